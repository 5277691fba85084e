//! Reading a whole input file. A big one (a node's rule set, a sidecar's config dump: tens of
//! megabytes) is read in two halves at once: most of the time goes into the kernel copying
//! pages and faulting in the buffer, which two threads do side by side.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Files from this size on are read in two halves at once.
const PARALLEL_FROM: u64 = 4 << 20;

/// The bytes of `path`, as [`std::fs::read`] gives them.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() >= PARALLEL_FROM {
        if let Some(bytes) = read_halves(&file, meta.len())? {
            return Ok(bytes);
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The text of `path`, as [`std::fs::read_to_string`] gives it (invalid UTF-8 is an error).
pub fn read_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_file(path)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.utf8_error()))
}

/// The `len` bytes of `file` read as two halves at once, then whatever was appended meanwhile;
/// `None` when the file turned out shorter (read it the plain way).
#[cfg(unix)]
fn read_halves(file: &File, len: u64) -> io::Result<Option<Vec<u8>>> {
    use std::os::unix::fs::FileExt;
    let Ok(n) = usize::try_from(len) else { return Ok(None) };
    // Zeroed memory of this size comes fresh from the system: pages are faulted in by the
    // reads themselves, on both threads.
    let mut bytes = vec![0u8; n];
    let (a, b) = bytes.split_at_mut(n / 2);
    let (ra, rb) = rayon::join(|| file.read_exact_at(a, 0), || file.read_exact_at(b, (n / 2) as u64));
    for r in [ra, rb] {
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    let mut rest = file;
    std::io::Seek::seek(&mut rest, io::SeekFrom::Start(len))?;
    rest.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

#[cfg(not(unix))]
fn read_halves(_file: &File, _len: u64) -> io::Result<Option<Vec<u8>>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_and_large_files_whole() {
        let dir = std::env::temp_dir().join(format!("meshpath-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for len in [0usize, 10, PARALLEL_FROM as usize + 12_345] {
            let path = dir.join(format!("f{len}"));
            let bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(read_file(&path).unwrap(), bytes);
            assert_eq!(read_text(&path).unwrap().len(), len);
        }
        std::fs::write(dir.join("bad"), [0xff, 0xfe]).unwrap();
        assert_eq!(read_text(&dir.join("bad")).unwrap_err().kind(), io::ErrorKind::InvalidData);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
