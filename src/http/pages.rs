//! The browser pages: the candidate's room (`/room`), the recruiter's live
//! view (`/observe`), the operator's session table (`/ops`), and their
//! assets under `/web/...`.
//!
//! The files live in `web/` as plain HTML, CSS and ES modules (no build
//! step) and are compiled into the binary with `include_bytes!`, so a
//! deployed `interviewd` needs nothing beside it. Every response says
//! `Cache-Control: no-cache`: the browser keeps a copy but revalidates it,
//! so a new binary's pages are picked up at once instead of mixing an old
//! `client.js` with a new `room.js`.
//!
//! Tokens travel in the page URL (`?token=…`: a browser cannot put a header
//! on a WebSocket upgrade), so pages are sent with `Referrer-Policy:
//! no-referrer` and a Content-Security-Policy that allows nothing but this
//! origin: no third-party script or request can ever see the URL.
//!
//! For working on the pages without rebuilding, `INTERVIEWD_WEB_DIR=<dir>`
//! makes the server read the same files from `<dir>` at each request
//! instead. Only the names in [`FILES`] are ever served, from either source,
//! so a request path never reaches the file system.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

/// One served file: its name under `web/`, its content type, its bytes.
struct File {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! file {
    ($name:literal, $content_type:expr) => {
        File {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $name)),
        }
    };
}

/// Everything under `web/` that is served. A file missing here is a 404.
const FILES: &[File] = &[
    file!("room.html", HTML),
    file!("observe.html", HTML),
    file!("ops.html", HTML),
    file!("client.js", JS),
    file!("ui.js", JS),
    file!("room.js", JS),
    file!("observe.js", JS),
    file!("ops.js", JS),
    file!("style.css", CSS),
];

/// Only this origin, for scripts, styles, fetches and the socket. `ws:` and
/// `wss:` are listed because older browsers do not let `'self'` cover a
/// WebSocket to the same host.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self' ws: wss:; img-src 'self' data:; media-src 'self' blob:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The pages, by path. Their query strings (`?token=…`) are read by the
/// pages' scripts, never by the server.
const PAGES: &[(&str, &str)] = &[
    ("/room", "room.html"),
    ("/observe", "observe.html"),
    ("/ops", "ops.html"),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    for &(path, name) in PAGES {
        cfg.route(path, web::get().to(move || async move { serve(name) }));
    }
    cfg.route("/web/{name}", web::get().to(asset));
}

async fn asset(name: web::Path<String>) -> HttpResponse {
    serve(&name)
}

fn serve(name: &str) -> HttpResponse {
    let Some(file) = FILES.iter().find(|f| f.name == name) else {
        return HttpResponse::NotFound()
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .json(serde_json::json!({
                "error": { "code": "NOT_FOUND", "message": "no such page" }
            }));
    };
    let body = match std::env::var_os("INTERVIEWD_WEB_DIR") {
        // Development only: a missing or unreadable file falls back to the
        // embedded copy rather than failing the page.
        Some(dir) => std::fs::read(std::path::Path::new(&dir).join(file.name))
            .unwrap_or_else(|_| file.bytes.to_vec()),
        None => file.bytes.to_vec(),
    };
    let mut response = HttpResponse::Ok();
    response
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(file.content_type),
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if file.content_type == HTML {
        response
            .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    }
    response.body(body)
}

#[cfg(test)]
#[path = "tests/pages.rs"]
mod tests;
