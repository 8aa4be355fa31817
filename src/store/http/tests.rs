//! The HTTP client against one-shot servers on loopback.

use super::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};

static NEVER: AtomicBool = AtomicBool::new(false);
const ANY: ReadBound = ReadBound {
    size: 1 << 20,
    cancel: &NEVER,
};

#[test]
fn the_token_travels_in_clear_only_to_loopback() {
    let token = || Some("s3cr3t".to_owned());
    for url in ["http://seed.example.com/app", "http://10.0.0.8/app"] {
        let err = HttpStore::with_token(url, token()).err().expect(url);
        assert!(err.to_string().contains("clear text"), "{err}");
        assert!(!err.to_string().contains("s3cr3t"));
    }
    for url in [
        "https://seed.example.com/app",
        "http://127.0.0.1:8080/app",
        "http://localhost/app",
        "http://[::1]/app",
    ] {
        assert!(HttpStore::with_token(url, token()).is_ok(), "{url}");
    }
    assert!(HttpStore::with_token("http://seed.example.com/app", None).is_ok());
}

/// A server that answers every request with `answer` and reports each
/// request's head.
fn one_shot(answer: String) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let mut stream = stream.unwrap();
            let mut head = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.send(head);
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (url, rx)
}

#[test]
fn only_a_blob_the_server_wrote_recently_counts_as_refreshed() {
    // The server's clock says 2015: its `Date`, not this machine's
    // clock, is what ages the object.
    let answer = |modified: Option<&str>| {
        let modified = modified.map_or(String::new(), |m| format!("last-modified: {m}\r\n"));
        format!(
            "HTTP/1.1 200 OK\r\ndate: Wed, 18 Feb 2015 23:16:09 GMT\r\n{modified}\
             content-length: 0\r\nconnection: close\r\n\r\n"
        )
    };
    let touch = |modified| {
        let (url, _) = one_shot(answer(modified));
        HttpStore::with_token(&url, None)
            .unwrap()
            .touch("blobs/ab/ab.zst")
    };
    assert!(touch(Some("Wed, 18 Feb 2015 22:17:09 GMT")).is_ok());
    let two_hours = Duration::from_secs(7200);
    assert!(matches!(
        touch(Some("Wed, 18 Feb 2015 21:16:09 GMT")),
        Err(StoreError::Stale { age: Some(a), .. }) if a == two_hours
    ));
    assert!(matches!(
        touch(None),
        Err(StoreError::Stale { age: None, .. })
    ));
}

#[test]
fn the_timeout_is_whole_seconds() {
    assert_eq!(parse_timeout("5"), Some(Duration::from_secs(5)));
    assert_eq!(parse_timeout(" 1 "), Some(Duration::from_secs(1)));
    for bad in ["0", "-1", "1.5", "5s", ""] {
        assert_eq!(parse_timeout(bad), None, "{bad}");
    }
}

#[test]
fn a_redirect_to_another_origin_is_not_followed() {
    let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi".to_owned();
    let (elsewhere, seen_elsewhere) = one_shot(ok);
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nlocation: {elsewhere}/x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let (store_url, seen) = one_shot(redirect);
    let store = HttpStore::with_token(&store_url, Some("s3cr3t".into())).unwrap();
    let err = store
        .get("snapshots/x.json", ANY)
        .err()
        .expect("a redirect elsewhere fails");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    let first = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        first
            .to_ascii_lowercase()
            .contains("authorization: bearer s3cr3t"),
        "{first}"
    );
    assert!(
        seen_elsewhere
            .recv_timeout(Duration::from_millis(500))
            .is_err(),
        "the other origin was asked"
    );
}

/// A server whose one answer is a body without a length that sends one byte
/// every 50 ms, for at most 30 s, so that a client that does not stop
/// sees it end.
fn trickle() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
            line.clear();
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
        for _ in 0..600 {
            if stream.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    url
}

#[test]
fn a_trickling_download_is_given_up_at_its_deadline() {
    let url = trickle();
    // 3 s for answers and retries, then 1 KiB at 1 MiB/s.
    let store = HttpStore::with_options(&url, None, Duration::from_secs(1), 1 << 20).unwrap();
    let bound = ReadBound {
        size: 1024,
        cancel: &NEVER,
    };
    let mut body = Vec::new();
    let err = store
        .get("blobs/ab/ab.zst", bound)
        .unwrap()
        .read_to_end(&mut body)
        .expect_err("the trickle ended before the deadline stopped it");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(body.len() < 200, "read {} bytes", body.len());
}

#[test]
fn a_download_stops_once_its_cancel_flag_is_set() {
    static CANCEL: AtomicBool = AtomicBool::new(false);
    let url = trickle();
    let store = HttpStore::with_token(&url, None).unwrap();
    let bound = ReadBound {
        size: 1 << 30,
        cancel: &CANCEL,
    };
    let mut download = store.get("blobs/ab/ab.zst", bound).unwrap();
    let mut byte = [0u8; 1];
    download.read_exact(&mut byte).unwrap();
    CANCEL.store(true, Ordering::Relaxed);
    let mut rest = Vec::new();
    download
        .read_to_end(&mut rest)
        .expect_err("the download went on after the flag was set");
    assert!(rest.is_empty(), "read {} bytes after the flag", rest.len());
}
