//! Line files on restart: whether a stored byte offset still falls where a line starts, and
//! where it does not, the lines read before counted and skipped without copying one, the
//! way `BufRead::split` would have read them.

/// The lines `BufRead::split` would yield (a last line may lack its newline), counted
/// without copying them: a restart counts every line file it has already read.
pub(super) fn count_lines(reader: &mut impl std::io::BufRead) -> std::io::Result<u64> {
    let (mut count, mut last) = (0u64, b'\n');
    loop {
        let buf = reader.fill_buf()?;
        let Some(&end) = buf.last() else {
            return Ok(count + u64::from(last != b'\n'));
        };
        count += memchr::memchr_iter(b'\n', buf).count() as u64;
        last = end;
        let n = buf.len();
        reader.consume(n);
    }
}

/// Moves past the first `n` lines without copying them; returns how many there were.
pub(super) fn skip_lines(reader: &mut impl std::io::BufRead, n: u64) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    while skipped < n {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let mut used = buf.len();
        for at in memchr::memchr_iter(b'\n', buf) {
            skipped += 1;
            if skipped == n {
                used = at + 1;
                break;
            }
        }
        reader.consume(used);
    }
    Ok(skipped)
}

/// Whether `at` is where a line it follows ended, as a stored offset should be: just past
/// a newline, or the file's end (nothing after it to read).
pub(super) fn ends_a_line(
    reader: &mut (impl std::io::Read + std::io::Seek),
    at: u64,
) -> std::io::Result<bool> {
    use std::io::SeekFrom;
    let len = reader.seek(SeekFrom::End(0))?;
    if at == 0 || at > len {
        return Ok(false);
    }
    if at == len {
        return Ok(true);
    }
    reader.seek(SeekFrom::Start(at - 1))?;
    let mut byte = [0u8];
    reader.read_exact(&mut byte)?;
    Ok(byte[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::{count_lines, ends_a_line, skip_lines};
    use std::io::{BufRead, BufReader};

    /// What the reader yields after skipping, read the way `read_lines` reads.
    fn after_skip(text: &str, n: u64, capacity: usize) -> (u64, Vec<String>) {
        let mut r = BufReader::with_capacity(capacity, text.as_bytes());
        let skipped = skip_lines(&mut r, n).unwrap();
        let rest = r
            .split(b'\n')
            .map(|l| String::from_utf8(l.unwrap()).unwrap())
            .collect();
        (skipped, rest)
    }

    #[test]
    fn lines_are_counted_and_skipped_as_split_reads_them() {
        for text in ["", "a", "a\n", "a\nbb\n", "a\nbb\nccc", "\n\n", "a\n\nc"] {
            let split = BufReader::new(text.as_bytes()).split(b'\n').count() as u64;
            // A two-byte buffer splits lines across reads.
            for capacity in [2, 1 << 20] {
                let mut r = BufReader::with_capacity(capacity, text.as_bytes());
                assert_eq!(count_lines(&mut r).unwrap(), split, "{text:?}");
            }
        }
        assert_eq!(
            after_skip("a\nbb\nccc", 1, 2),
            (1, vec!["bb".into(), "ccc".into()])
        );
        assert_eq!(after_skip("a\nbb\nccc", 2, 3), (2, vec!["ccc".into()]));
        assert_eq!(after_skip("a\nbb\n", 2, 2), (2, vec![]));
        assert_eq!(after_skip("a\nbb\n", 5, 2), (2, vec![]));
        assert_eq!(
            after_skip("a\nbb", 0, 2),
            (0, vec!["a".into(), "bb".into()])
        );
    }

    #[test]
    fn an_offset_is_trusted_only_where_a_line_ended() {
        let at = |text: &str, offset: u64| {
            ends_a_line(&mut std::io::Cursor::new(text.as_bytes()), offset).unwrap()
        };
        assert!(at("a\nbb\n", 2));
        assert!(at("a\nbb\n", 5), "the end, past the last newline");
        assert!(at("a\nbb", 4), "the end of a last line without a newline");
        assert!(!at("a\nbb\n", 3), "inside a line");
        assert!(!at("a\nbb\n", 0), "no line ends at the start");
        assert!(!at("a\nbb\n", 6), "past the end: the file was cut");
    }
}
