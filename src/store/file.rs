//! Opening a file that a directory store or the blob cache holds under a
//! key: only a regular file is ever read.
//!
//! A symlink could make a key read `/dev/zero` or a file outside the store,
//! a FIFO would block the open until something writes to it, a device could
//! stream forever. So the last component is opened without following a
//! symlink and without blocking, and the kind is judged on the opened
//! descriptor itself, which cannot be swapped after the check.
//!
//! It must never block on opening, nor hand on a descriptor that is not a
//! regular file's.

use std::fs::{File, FileType};
use std::io;
use std::path::Path;

/// The file at `path`, or, when something else is there, what it is (`a
/// symbolic link`, `a FIFO`…). A missing file is an `io::Error` of kind
/// `NotFound`, as from [`File::open`].
pub(crate) fn open_regular(path: &Path) -> io::Result<Result<File, &'static str>> {
    #[cfg(unix)]
    let file = {
        use rustix::fs::{Mode, OFlags};
        use rustix::io::Errno;
        // O_NONBLOCK: opening a FIFO does not wait for a writer (it has no
        // effect on reading a regular file). O_NOFOLLOW: a symlink fails
        // with ELOOP; a socket fails with ENXIO.
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(Errno::LOOP) => return Ok(Err("a symbolic link")),
            Err(Errno::NXIO) => return Ok(Err("a socket")),
            Err(e) => return Err(e.into()),
        }
    };
    #[cfg(not(unix))]
    let file = {
        if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
            return Ok(Err("a symbolic link"));
        }
        File::open(path)?
    };
    let kind = file.metadata()?.file_type();
    Ok(if kind.is_file() {
        Ok(file)
    } else {
        Err(describe(kind))
    })
}

fn describe(kind: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "something else"
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use rustix::fs::Mode;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn only_regular_files_open_and_a_fifo_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("file"), b"bytes").unwrap();
        std::os::unix::fs::symlink("/dev/zero", path("zero")).unwrap();
        std::os::unix::fs::symlink(path("file"), path("link")).unwrap();
        std::fs::create_dir(path("dir")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path("fifo"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();

        // On its own thread: an open that blocks fails the test instead of
        // hanging it.
        let (tx, rx) = mpsc::channel();
        let fifo = path("fifo");
        std::thread::spawn(move || tx.send(open_regular(&fifo).map(|r| r.err())).unwrap());
        let opened = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            opened.expect("opening a FIFO blocked").unwrap(),
            Some("a FIFO")
        );

        assert!(open_regular(&path("file")).unwrap().is_ok());
        for (name, kind) in [
            ("zero", "a symbolic link"),
            ("link", "a symbolic link"),
            ("dir", "a directory"),
        ] {
            assert_eq!(
                open_regular(&path(name)).unwrap().err(),
                Some(kind),
                "{name}"
            );
        }
        let missing = open_regular(&path("none")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }
}
