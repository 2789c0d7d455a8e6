//! The running processes snapshot behind `running_process_*`.

use std::fs;

/// One running process as the snapshot recorded it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunningProcess {
    /// `running_process_process_id`.
    pub process_id: u32,
    /// `running_process_process_name`: the full path of its image, or its kernel name in
    /// brackets for kernel threads, which have no image.
    pub process_name: String,
    /// `running_process_command_line`: arguments joined by spaces; empty unless
    /// `track_command_line` was on when the snapshot was taken, and for kernel threads.
    pub command_line: String,
}

/// Every process in `/proc`, by ascending id; processes that exit while being read are left
/// out.
pub fn take(with_command_line: bool) -> Vec<RunningProcess> {
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids.into_iter()
        .filter_map(|pid| {
            let process_name = fsgate_core::originator::image_path(pid).ok()?;
            let command_line = if with_command_line {
                command_line(pid)
            } else {
                String::new()
            };
            Some(RunningProcess {
                process_id: pid,
                process_name,
                command_line,
            })
        })
        .collect()
}

/// The command line of `pid` (`/proc/<pid>/cmdline`, arguments joined by spaces); empty
/// when the process is gone, is a zombie or a kernel thread.
pub fn command_line(pid: u32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| join_cmdline(&raw))
        .unwrap_or_default()
}

fn join_cmdline(raw: &[u8]) -> String {
    let trimmed = raw.strip_suffix(&[0]).unwrap_or(raw);
    trimmed
        .split(|&b| b == 0)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_arguments_are_joined_by_spaces() {
        assert_eq!(join_cmdline(b"/bin/sleep\x0030\x00"), "/bin/sleep 30");
        assert_eq!(join_cmdline(b""), "");
        assert_eq!(join_cmdline(b"one"), "one");
    }

    #[test]
    fn snapshot_lists_this_process_with_its_command_line() {
        let me = std::process::id();
        let all = take(true);
        let mine = all.iter().find(|p| p.process_id == me).unwrap();
        assert_eq!(
            mine.process_name,
            std::env::current_exe().unwrap().to_string_lossy()
        );
        assert!(mine.command_line.contains("fsgate_process"));
        assert!(all.windows(2).all(|w| w[0].process_id < w[1].process_id));
        let bare = take(false);
        assert!(bare.iter().all(|p| p.command_line.is_empty()));
    }
}
