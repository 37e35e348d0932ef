//! Lets go of the start-up code's pages once the daemon is idle.
//!
//! Starting touches code all over the binary (the node, the HTTP stack, clap, the store), and the kernel
//! maps up to 64 KiB around each page it faults in, so an idle daemon kept about 18 MB of a 28 MB code
//! segment mapped that it does not run again. Dropping the mappings of the binary's read-only, never
//! written parts lowers its resident size to what it runs from then on; the pages stay in the page
//! cache, and whatever runs again faults back in from there.

use std::path::Path;

/// The binary's mappings that hold only file contents: not writable, and no page changed (a page the
/// dynamic loader relocated is an anonymous copy, and must stay). From `/proc/self/smaps`.
fn clean_read_only(smaps: &str, exe: &Path) -> Vec<(usize, usize)> {
    let exe = exe.to_string_lossy();
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let mut dirty = false;
    let mut finish = |current: &mut Option<(usize, usize)>, dirty: bool| {
        if let (Some(range), false) = (current.take(), dirty) {
            out.push(range);
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16))
        {
            finish(&mut current, dirty);
            dirty = false;
            let perms = fields.next().unwrap_or_default();
            let path = fields.nth(3).unwrap_or_default();
            if path == exe && !perms.contains('w') && perms.ends_with('p') {
                current = Some((start, end - start));
            }
            continue;
        }
        // A page written in a private mapping (the loader's relocations) is an anonymous copy. (Dirty
        // counts also file pages not yet written back, which the file still holds.)
        if first == "Anonymous:" && fields.next().is_some_and(|kb| kb != "0") {
            dirty = true;
        }
    }
    finish(&mut current, dirty);
    out
}

/// Drops the mappings [`clean_read_only`] finds; returns how many bytes of address space that covered.
pub fn release_startup_pages() -> usize {
    let (Ok(exe), Ok(smaps)) =
        (std::fs::read_link("/proc/self/exe"), std::fs::read_to_string("/proc/self/smaps"))
    else {
        return 0;
    };
    let mut released = 0;
    for (start, len) in clean_read_only(&smaps, &exe) {
        let Some(addr) = std::ptr::NonNull::new(start as *mut std::ffi::c_void) else { continue };
        // SAFETY: the range is one whole mapping of the executable that is not writable and has no
        // changed page, so every page in it equals the file's contents: MADV_DONTNEED only drops the
        // page-table entries, and the next access maps the same bytes again from the file (which cannot
        // change while it runs: writing a running executable fails with ETXTBSY).
        #[allow(unsafe_code)]
        let done = unsafe { nix::sys::mman::madvise(addr, len, nix::sys::mman::MmapAdvise::MADV_DONTNEED) };
        if done.is_ok() {
            released += len;
        }
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
5600-5700 r--p 00000000 fe:01 42 /opt/wopr
Rss:                 100 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
5700-5900 r-xp 00100000 fe:01 42 /opt/wopr
Private_Dirty:      2572 kB
Anonymous:             0 kB
5900-5a00 r--p 00300000 fe:01 42 /opt/wopr
Private_Dirty:       776 kB
Anonymous:           776 kB
5a00-5a10 rw-p 00400000 fe:01 42 /opt/wopr
Private_Dirty:        48 kB
7f00-7f10 r-xp 00000000 fe:01 7 /usr/lib/libc.so.6
Private_Dirty:         0 kB
";

    #[test]
    fn only_the_executables_clean_read_only_mappings_are_let_go() {
        let got = clean_read_only(SMAPS, Path::new("/opt/wopr"));
        // The relocated (dirty) constants, the writable data and other files stay.
        assert_eq!(got, vec![(0x5600, 0x100), (0x5700, 0x200)]);
    }

    #[test]
    fn releasing_leaves_the_process_running_its_code() {
        assert!(release_startup_pages() > 0, "nothing was released");
        // Code and constants come back from the file.
        let v: Vec<String> = (0..1000).map(|i| format!("{i:x}")).collect();
        assert_eq!(v[255], "ff");
        assert!(std::fs::read_to_string("/proc/self/status").unwrap().contains("VmRSS"));
    }
}
