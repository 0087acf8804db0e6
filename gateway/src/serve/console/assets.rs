//! The console's pages and assets, built into the binary (`gateway/console/`, no build
//! step): the appliance serves them without reaching anything.

/// The login page.
pub const LOGIN_HTML: &str = include_str!("../../../console/login.html");
/// Every page of the console (its script renders the page the path names).
pub const CONSOLE_HTML: &str = include_str!("../../../console/console.html");

/// The asset named `name`, with its content type.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "console.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../../console/console.js"),
        ),
        "console.css" => (
            "text/css; charset=utf-8",
            include_str!("../../../console/console.css"),
        ),
        "uplot.iife.min.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../../console/uplot.iife.min.js"),
        ),
        "uplot.min.css" => (
            "text/css; charset=utf-8",
            include_str!("../../../console/uplot.min.css"),
        ),
        _ => return None,
    })
}

/// The pages, by path under `/console/`.
pub const PAGES: &[&str] = &["overview", "custodians", "keys", "jobs", "configuration"];
