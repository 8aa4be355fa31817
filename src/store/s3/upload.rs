//! Writing an object whole: one PUT up to [`PART_SIZE`], else a multipart
//! upload of parts of that size, completed in one request.
//!
//! It must never leave a partial object under its key: a multipart upload
//! that fails is aborted, and one that is not completed is invisible.

use std::io::{self, Read};
use std::path::Path;

use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};

use super::S3Store;
use crate::store::api::{Store, StoreError};

/// Objects up to this size go up in one PUT; larger ones in parts of it.
const PART_SIZE: usize = 8 << 20;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

impl S3Store {
    pub(super) async fn upload(&self, key: &str, src: &Path) -> Result<(), StoreError> {
        let path = self.path(key);
        let s3 = |e: object_store::Error| self.error("upload", key, e);
        let local = |source: io::Error| StoreError::Io {
            store: self.location(),
            op: "upload",
            key: key.to_owned(),
            source,
        };
        let mut file = std::fs::File::open(src).map_err(local)?;
        let len = file.metadata().map_err(local)?.len();
        if len <= PART_SIZE as u64 {
            let mut body = Vec::with_capacity(len as usize);
            file.read_to_end(&mut body).map_err(local)?;
            self.client
                .put(&path, PutPayload::from(body))
                .await
                .map_err(s3)?;
            return Ok(());
        }
        let upload = self.client.put_multipart(&path).await.map_err(s3)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buf = vec![0u8; 1 << 20];
        let written = async {
            loop {
                let n = file.read(&mut buf).map_err(local)?;
                if n == 0 {
                    return Ok(());
                }
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(s3)?;
                writer.write(&buf[..n]);
            }
        }
        .await;
        match written {
            // `finish` aborts the upload itself if completing it fails.
            Ok(()) => writer.finish().await.map(drop).map_err(s3),
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }
}
