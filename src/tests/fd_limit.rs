use super::*;

#[test]
fn the_cap_keeps_headroom_below_the_limit() {
    assert_eq!(socket_cap(1024), 896);
    assert_eq!(socket_cap(1_048_576), 1_048_448);
    assert_eq!(socket_cap(100), 50);
    assert_eq!(socket_cap(0), 1);
    assert_eq!(total_sockets(0, 1024), 896);
    assert_eq!(total_sockets(300, 1024), 300);
    assert_eq!(total_sockets(5000, 1024), 896);
}
