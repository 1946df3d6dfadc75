//! The pages' static files, built into the binary and served under a name carrying their
//! content's hash, so browsers may keep them for a year and a new build is never mixed with an
//! old file. Nothing is fetched from elsewhere at run time.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::LazyLock;

pub struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    path: LazyLock<String>,
}

impl Asset {
    /// `/static/<name>.<first 12 hex digits of SHA-256>.<ext>`.
    pub fn path(&'static self) -> &'static str {
        self.path.as_str()
    }
}

fn hashed(name: &str, ext: &str, body: &[u8]) -> String {
    let d = openssl::sha::sha256(body);
    let hex: String = d[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("/static/{name}.{hex}.{ext}")
}

macro_rules! asset {
    ($name:ident, $file:literal, $stem:literal, $ext:literal, $ct:literal) => {
        pub static $name: Asset = Asset {
            body: include_bytes!(concat!("../../static/", $file)),
            content_type: $ct,
            path: LazyLock::new(|| {
                hashed($stem, $ext, include_bytes!(concat!("../../static/", $file)))
            }),
        };
    };
}

asset!(CSS, "app.css", "app", "css", "text/css; charset=utf-8");
asset!(
    APP_JS,
    "app.js",
    "app",
    "js",
    "text/javascript; charset=utf-8"
);
asset!(
    HTMX,
    "vendor/htmx-2.0.11.min.js",
    "htmx-2.0.11",
    "js",
    "text/javascript; charset=utf-8"
);

static ALL: [&Asset; 3] = [&CSS, &APP_JS, &HTMX];

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/static/{file}", get(serve))
}

async fn serve(Path(file): Path<String>) -> Response {
    let wanted = format!("/static/{file}");
    match ALL.iter().find(|a| a.path() == wanted) {
        Some(a) => {
            let mut res = a.body.into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            );
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            res
        }
        None => (StatusCode::NOT_FOUND, "").into_response(),
    }
}
