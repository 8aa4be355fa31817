//! `object_store`'s errors shortened to one line: the HTTP status and the
//! S3 error code where the server sent them, else the last attempt's cause.
//!
//! It must never put the server's whole XML body, or a multi-line message,
//! into what the user reads.

/// The HTTP status in an `object_store` error's text, if it has one.
pub(super) fn status_of(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    text[at..].get(..3)?.parse().ok()
}

/// An `object_store` error, shortened for one line: the HTTP status and the
/// S3 error code where the server sent them (not the whole XML body), else
/// the cause of the last attempt and how many were made.
pub(super) fn summarize(full: &str) -> String {
    let code = full
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code);
    if let (Some(status), Some(code)) = (status_of(full), code) {
        return format!("HTTP {status} {code}");
    }
    let retries = full
        .split_once(", after ")
        .and_then(|(_, rest)| rest.split_once(" retries"))
        .map(|(n, _)| n);
    // object_store writes "Error performing GET <url> in <time>[, after N
    // retries, …] - <cause>".
    match full.rsplit_once(" - ") {
        Some((_, cause)) => match retries {
            Some(n) => format!("{} (after {n} retries)", cause.trim()),
            None => cause.trim().to_owned(),
        },
        None => full.to_owned(),
    }
}

/// An error and its causes in one line.
pub(super) fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    for inner in crate::store::api::causes(e) {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
    }
    s.replace('\n', " ")
}
