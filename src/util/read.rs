//! Reading a whole input file. A big one (a node's rule set, a sidecar's config dump: tens of
//! megabytes) is read in two halves at once: most of the time goes into the kernel copying
//! pages and faulting in the buffer, which two threads do side by side.
//!
//! Only regular files are read (a device such as `/dev/zero` would be read until memory runs
//! out, a FIFO without a writer blocks forever), and none larger than the input limit
//! ([`set_max_input`], the `--max-input-size` flag; [`DEFAULT_MAX_INPUT`] otherwise).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest input file read by default: 512 MiB (the largest config dump met in the wild
/// is under 100 MB).
pub const DEFAULT_MAX_INPUT: u64 = 512 << 20;

static MAX_INPUT: AtomicU64 = AtomicU64::new(DEFAULT_MAX_INPUT);

/// Sets the largest input file read, in bytes, for the whole process.
pub fn set_max_input(bytes: u64) {
    MAX_INPUT.store(bytes, Ordering::Relaxed);
}

/// The largest input file read, in bytes.
pub fn max_input() -> u64 {
    MAX_INPUT.load(Ordering::Relaxed)
}

/// Whether `path` may be read: a regular file (symbolic links followed) within the input
/// limit. Checked before the file is opened, so a FIFO is never opened.
pub fn check_input(path: &Path) -> io::Result<std::fs::Metadata> {
    let meta = check_regular(path)?;
    if meta.len() > max_input() {
        return Err(too_large(meta.len()));
    }
    Ok(meta)
}

/// Whether `path` is a regular file (symbolic links followed), checked without opening it:
/// what is streamed rather than read whole (a capture) is checked with this alone.
pub fn check_regular(path: &Path) -> io::Result<std::fs::Metadata> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        let what =
            if meta.is_dir() { "a directory" } else { "not a regular file (a device, FIFO or socket)" };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}; only regular files are read"),
        ));
    }
    Ok(meta)
}

fn too_large(len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{len} bytes, more than the input limit of {} bytes (raise it with --max-input-size)",
            max_input()
        ),
    )
}

/// Files from this size on are read in two halves at once.
const PARALLEL_FROM: u64 = 4 << 20;

/// The bytes of `path`, as [`std::fs::read`] gives them.
/// Refused as [`check_input`] says; a file that grows past the limit while read is refused too.
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    check_input(path)?;
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file; only regular files are read",
        ));
    }
    let limit = max_input();
    if meta.len() >= PARALLEL_FROM && meta.len() <= limit {
        if let Some(bytes) = read_halves(&file, meta.len())? {
            if bytes.len() as u64 > limit {
                return Err(too_large(bytes.len() as u64));
            }
            return Ok(bytes);
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len().min(limit)).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
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
    rest.take(max_input().saturating_add(1).saturating_sub(len)).read_to_end(&mut bytes)?;
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
        // A directory and a device are refused before anything is read.
        assert_eq!(read_file(&dir).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        #[cfg(unix)]
        {
            let e = read_file(Path::new("/dev/zero")).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        assert_eq!(read_text(&dir.join("bad")).unwrap_err().kind(), io::ErrorKind::InvalidData);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
