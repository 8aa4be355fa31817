//! A cursor over a graph's bytes that refuses to read past its end, and
//! reads numbers the way rustc's opaque encoder writes them.
//!
//! It must never panic or read past its slice, whatever the bytes.

/// rustc's incremental file format version, the u16 after the magic.
pub(super) const FORMAT_VERSION: u16 = 0;

/// What is wrong with a graph file of the calibrated rustc.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("it does not start with rustc's `RSIC` header")]
    NoHeader,
    #[error("its header has format version {0}, not {FORMAT_VERSION}")]
    FormatVersion(u16),
    #[error("it does not end with rustc's `rust-end-file` footer")]
    NoFooter,
    #[error("{what} at byte {at} runs past its end")]
    Truncated { what: &'static str, at: usize },
    #[error("{what} at byte {at}")]
    Invalid { what: &'static str, at: usize },
    #[error("its trailer counts {claimed} nodes of kind {kind}, it holds {found}")]
    KindCount { kind: u16, claimed: u64, found: u64 },
    #[error("its trailer counts {claimed} edges, it holds {found}")]
    EdgeCount { claimed: u64, found: u64 },
    #[error("{0} unread bytes are left before its totals")]
    Trailing(usize),
}

/// A cursor that refuses to read past its slice.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Damage> {
        let at = self.pos;
        let slice = at
            .checked_add(n)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or(Damage::Truncated { what, at })?;
        self.pos += n;
        Ok(slice)
    }

    pub(super) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Damage> {
        Ok(self.take(N, what)?.try_into().expect("N bytes"))
    }

    /// Unsigned LEB128 of at most `bits` bits, as rustc's opaque encoder
    /// writes it: no longer than the type needs, no bit beyond it.
    fn leb(&mut self, bits: u32, what: &'static str) -> Result<u64, Damage> {
        let at = self.pos;
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.array::<1>(what)?[0];
            let low = u64::from(byte & 0x7f);
            if shift >= bits || (bits - shift < 7 && low >> (bits - shift) != 0) {
                return Err(Damage::Invalid {
                    what: "a number too large for its type",
                    at,
                });
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    pub(super) fn leb_u32(&mut self, what: &'static str) -> Result<u32, Damage> {
        Ok(self.leb(32, what)? as u32)
    }

    pub(super) fn leb_u64(&mut self, what: &'static str) -> Result<u64, Damage> {
        self.leb(64, what)
    }
}
