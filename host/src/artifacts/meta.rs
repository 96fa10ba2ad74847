//! The last-needed times, persisted so that pruning after a restart is still right. The
//! file is a cache of knowledge, not a source of truth: a missing, corrupt or partial file
//! costs nothing but precision (an artifact without a time counts as needed when it was
//! written), and it is rewritten whole, through a temp file and a rename.
//!
//! Format: a `pvf-last-needed 1` line, then one `<artifact file name> <unix seconds>` line
//! per artifact.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use pvf_common::params::ArtifactId;

/// The metadata file's name in the cache dir.
pub const META_FILE: &str = "last-needed";
/// Its temp file while being rewritten.
pub const META_TEMP: &str = "last-needed.tmp";
const FIRST_LINE: &str = "pvf-last-needed 1";

/// Reads the times; whatever cannot be parsed is ignored.
pub fn load(cache_dir: &Path) -> HashMap<ArtifactId, SystemTime> {
    let Ok(text) = std::fs::read_to_string(cache_dir.join(META_FILE)) else {
        return HashMap::new();
    };
    let mut lines = text.lines();
    if lines.next() != Some(FIRST_LINE) {
        tracing::warn!("cache metadata unreadable; last-needed times rebuilt from the scan");
        return HashMap::new();
    }
    lines
        .filter_map(|line| {
            let (name, secs) = line.split_once(' ')?;
            let id = ArtifactId::from_file_name(name)?;
            let secs: u64 = secs.parse().ok()?;
            Some((id, SystemTime::UNIX_EPOCH + Duration::from_secs(secs)))
        })
        .collect()
}

/// Rewrites the file atomically.
pub fn store(cache_dir: &Path, times: &[(ArtifactId, SystemTime)]) -> std::io::Result<()> {
    let temp = cache_dir.join(META_TEMP);
    let mut text = format!("{FIRST_LINE}\n");
    for (id, time) in times {
        let secs = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        text.push_str(&format!("{} {secs}\n", id.file_name()));
    }
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, cache_dir.join(META_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvf_common::params::ExecutorParams;

    #[test]
    fn round_trips_and_survives_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let id = ArtifactId::new(b"code", &ExecutorParams::default());
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        store(dir.path(), &[(id, when)]).unwrap();
        assert_eq!(load(dir.path()).get(&id), Some(&when));
        let mut text = std::fs::read_to_string(dir.path().join(META_FILE)).unwrap();
        text.push_str("garbage line\nzz 12\n");
        std::fs::write(dir.path().join(META_FILE), &text).unwrap();
        assert_eq!(load(dir.path()).get(&id), Some(&when));
        std::fs::write(dir.path().join(META_FILE), b"\xff\x00junk").unwrap();
        assert!(load(dir.path()).is_empty());
        std::fs::remove_file(dir.path().join(META_FILE)).unwrap();
        assert!(load(dir.path()).is_empty());
    }
}
