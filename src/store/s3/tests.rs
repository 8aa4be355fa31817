//! Error shortening and client configuration, without a server.

use super::*;

#[test]
fn errors_are_shortened_to_status_and_code() {
    let listing = "Generic S3 error: Error performing list request: Error performing GET \
        http://127.0.0.1:5055/nobucket?list-type=2 in 22ms - Server returned non-2xx status \
        code: 404 Not Found: <?xml version=\"1.0\"?> <Error><Code>NoSuchBucket</Code>\
        <Message>The specified bucket does not exist</Message></Error>";
    assert_eq!(status_of(listing), Some(404));
    assert_eq!(summarize(listing), "HTTP 404 NoSuchBucket");
    let refused = "Generic S3 error: Error performing GET http://127.0.0.1:5999/b in 1s, \
        after 5 retries, max_retries: 5, retry_timeout: 120s  - HTTP error: error sending \
        request: tcp connect error: Connection refused (os error 111)";
    assert_eq!(status_of(refused), None);
    assert_eq!(
        summarize(refused),
        "HTTP error: error sending request: tcp connect error: Connection refused \
         (os error 111) (after 5 retries)"
    );
}

/// `tests/s3.rs` shows a stall is given up after the read timeout, with
/// a short one set as a user would; this is the default it replaces.
#[test]
fn the_read_timeout_is_30s_unless_aws_read_timeout_sets_it() {
    let read_timeout = |settings| {
        with_defaults(settings)
            .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::ReadTimeout))
    };
    assert_eq!(read_timeout(vec![]).as_deref(), Some("30s"));
    // As `S3Store::new` reads `AWS_READ_TIMEOUT=2s` from the environment.
    let key = "AWS_READ_TIMEOUT".to_ascii_lowercase().parse().unwrap();
    assert_eq!(
        read_timeout(vec![(key, "2s".to_owned())]).as_deref(),
        Some("2s")
    );
}

#[test]
fn plain_http_is_allowed_on_loopback_only() {
    assert!(is_loopback_http("http://127.0.0.1:9000"));
    assert!(is_loopback_http("http://localhost:9000/"));
    assert!(is_loopback_http("http://[::1]:9000"));
    assert!(!is_loopback_http("http://minio.internal:9000"));
    assert!(!is_loopback_http("http://10.0.0.1"));
    assert!(!is_loopback_http("https://127.0.0.1:9000"));
}

#[test]
fn a_download_past_its_deadline_or_cancelled_stops_before_the_next_chunk() {
    use crate::store::bound::Deadline;
    use std::sync::atomic::AtomicBool;
    static NEVER: AtomicBool = AtomicBool::new(false);
    static SET: AtomicBool = AtomicBool::new(true);
    let runtime = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
    );
    for (cancel, kind) in [
        (&NEVER, std::io::ErrorKind::TimedOut),
        (&SET, std::io::ErrorKind::Other),
    ] {
        // A long stream (ended, so that a download that does not stop fails
        // the test instead of hanging it), and a deadline that has passed.
        let long =
            futures_util::stream::repeat_with(|| Ok(bytes::Bytes::from_static(b"x"))).take(100_000);
        let bound = ReadBound { size: 0, cancel };
        let mut download = Download {
            stream: long.boxed(),
            chunk: bytes::Bytes::new(),
            failed: None,
            what: "s3://b/blobs/ab/ab.zst".into(),
            runtime: runtime.clone(),
            deadline: Deadline::start(Duration::ZERO, 1, bound),
        };
        let mut body = Vec::new();
        let err = download.read_to_end(&mut body).unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(body.is_empty());
    }
}
