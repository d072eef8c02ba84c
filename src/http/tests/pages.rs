use super::*;
use actix_web::{body::to_bytes, test, App};

#[actix_web::test]
async fn serves_pages_and_assets_with_their_types() {
    let app = test::init_service(App::new().configure(configure)).await;
    for (path, content_type) in [
        ("/room", HTML),
        ("/observe?interview=x&token=y", HTML),
        ("/ops", HTML),
        ("/web/client.js", JS),
        ("/web/style.css", CSS),
    ] {
        let res = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(res.status(), 200, "{path}");
        let headers = res.headers();
        assert_eq!(headers.get(header::CONTENT_TYPE).unwrap(), content_type);
        assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-cache");
        assert!(!to_bytes(res.into_body()).await.unwrap().is_empty());
    }
}

#[actix_web::test]
async fn unknown_names_are_not_found() {
    let app = test::init_service(App::new().configure(configure)).await;
    for path in ["/web/nope.js", "/web/..%2FCargo.toml", "/web/"] {
        let res = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(res.status(), 404, "{path}");
    }
}
