use super::*;

#[test]
fn a_taken_port_is_one_line_naming_the_settings() {
    let taken = bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = bind_public("127.0.0.1", port).unwrap_err().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "cannot listen on 127.0.0.1:{port} (BIND/PORT): address already in use"
        )),
        "{err}"
    );
    let err = bind_one(taken.local_addr().unwrap(), "METRICS_BIND")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("(METRICS_BIND): address already in use"),
        "{err}"
    );
}

#[test]
fn port_zero_binds_a_free_port() {
    let listeners = bind_public("127.0.0.1", 0).unwrap();
    assert!(listeners[0].local_addr().unwrap().port() != 0);
}
