//! The compiled programs, run by a small classic-BPF interpreter over chosen `seccomp_data`, combined
//! as the kernel combines several filters: the most severe action wins, and among equal actions the
//! most recently installed program's.

use super::*;

/// What the kernel would do with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allow,
    Errno(i32),
    Kill,
}

struct Call {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

fn call(nr: i64, args: &[u64]) -> Call {
    let mut all = [0; 6];
    all[..args.len()].copy_from_slice(args);
    Call { nr: nr as u32, arch: AUDIT_ARCH, args: all }
}

/// The 32-bit word at `offset` of `struct seccomp_data` (nr, arch, instruction pointer, six arguments).
fn word(c: &Call, offset: u32) -> u32 {
    match offset {
        0 => c.nr,
        4 => c.arch,
        8 | 12 => 0,
        o if (16..64).contains(&o) => {
            let a = c.args[((o - 16) / 8) as usize];
            if o % 8 == 0 { a as u32 } else { (a >> 32) as u32 }
        }
        o => panic!("load from offset {o}"),
    }
}

fn run(prog: &[libc::sock_filter], c: &Call) -> u32 {
    let (mut acc, mut pc) = (0u32, 0usize);
    loop {
        let ins = prog[pc];
        let code = u32::from(ins.code);
        pc += 1;
        match code {
            _ if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => acc = word(c, ins.k),
            _ if code == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => acc &= ins.k,
            _ if code == libc::BPF_RET | libc::BPF_K => return ins.k,
            _ if code == libc::BPF_JMP | libc::BPF_JA => pc += ins.k as usize,
            _ if code & 0x07 == libc::BPF_JMP => {
                let taken = match code & 0xf0 {
                    x if x == libc::BPF_JEQ => acc == ins.k,
                    x if x == libc::BPF_JGT => acc > ins.k,
                    x if x == libc::BPF_JGE => acc >= ins.k,
                    x if x == libc::BPF_JSET => acc & ins.k != 0,
                    other => panic!("jump {other:#x}"),
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            other => panic!("instruction {other:#x}"),
        }
    }
}

fn verdict(programs: &[Vec<libc::sock_filter>], c: &Call) -> Verdict {
    // The kernel walks from the newest program to the oldest and keeps a strictly more severe action.
    let severity = |ret: u32| (ret & libc::SECCOMP_RET_ACTION_FULL) as i32;
    let mut best = libc::SECCOMP_RET_ALLOW;
    for prog in programs.iter().rev() {
        let ret = run(prog, c);
        if severity(ret) < severity(best) {
            best = ret;
        }
    }
    match best & libc::SECCOMP_RET_ACTION_FULL {
        libc::SECCOMP_RET_ALLOW => Verdict::Allow,
        libc::SECCOMP_RET_ERRNO => Verdict::Errno((best & libc::SECCOMP_RET_DATA) as i32),
        libc::SECCOMP_RET_KILL_PROCESS => Verdict::Kill,
        other => panic!("action {other:#x}"),
    }
}

fn both() -> [Vec<Vec<libc::sock_filter>>; 2] {
    [bpf(Network::None).unwrap(), bpf(Network::Host).unwrap()]
}

#[test]
fn every_listed_call_is_allowed_and_every_refused_one_gets_eperm() {
    for progs in both() {
        for s in table::ALLOWED.iter().filter(|s| ![libc::SYS_socket, libc::SYS_socketpair].contains(&s.nr)) {
            assert_eq!(verdict(&progs, &call(s.nr, &[])), Verdict::Allow, "{}", s.name);
        }
        for s in table::REFUSED {
            assert_eq!(verdict(&progs, &call(s.nr, &[])), Verdict::Errno(libc::EPERM), "{}", s.name);
        }
    }
}

#[test]
fn the_named_attack_surface_is_refused() {
    let progs = bpf(Network::None).unwrap();
    for nr in [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_bpf,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_userfaultfd,
        libc::SYS_perf_event_open,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_mount,
        libc::SYS_unshare,
        libc::SYS_setns,
    ] {
        assert_eq!(verdict(&progs, &call(nr, &[])), Verdict::Errno(libc::EPERM), "syscall {nr}");
    }
}

#[test]
fn unknown_calls_and_clone3_look_unimplemented() {
    for progs in both() {
        for nr in [libc::SYS_clone3, 458 /* listmount */, 1000, 4095] {
            assert_eq!(verdict(&progs, &call(nr, &[])), Verdict::Errno(libc::ENOSYS), "syscall {nr}");
        }
    }
}

#[test]
fn foreign_abis_are_killed() {
    for progs in both() {
        let x32 = call(i64::from(X32_SYSCALL_BIT) | libc::SYS_getpid, &[]);
        assert_eq!(verdict(&progs, &x32), Verdict::Kill, "x32 getpid");
        let mut i386 = call(20, &[]);
        i386.arch = 0x4000_0003; // AUDIT_ARCH_I386
        assert_eq!(verdict(&progs, &i386), Verdict::Kill, "i386 getpid");
    }
}

#[test]
fn sockets_are_unix_only_without_network() {
    let [none, host] = both();
    let socket = |family: i32, protocol: i32| call(libc::SYS_socket, &[family as u64, 1, protocol as u64]);
    let refused = Verdict::Errno(libc::EAFNOSUPPORT);
    assert_eq!(verdict(&none, &socket(libc::AF_UNIX, 0)), Verdict::Allow);
    for family in
        [libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK, libc::AF_PACKET, libc::AF_VSOCK, libc::AF_ALG]
    {
        assert_eq!(verdict(&none, &socket(family, 0)), refused, "family {family} without network");
    }
    for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
        assert_eq!(verdict(&host, &socket(family, 0)), Verdict::Allow, "family {family} with host network");
    }
    assert_eq!(verdict(&host, &socket(libc::AF_NETLINK, libc::NETLINK_ROUTE)), Verdict::Allow);
    for (family, protocol) in [(libc::AF_NETLINK, 9 /* audit */), (libc::AF_VSOCK, 0), (libc::AF_PACKET, 0)] {
        assert_eq!(verdict(&host, &socket(family, protocol)), refused, "family {family} with host network");
    }
    // The family is an int: high bits set by a caller do not change it.
    assert_eq!(verdict(&none, &socket(libc::AF_UNIX, 0)), Verdict::Allow);
    let pair = |family: i32| call(libc::SYS_socketpair, &[family as u64, 1, 0, 0]);
    assert_eq!(verdict(&host, &pair(libc::AF_UNIX)), Verdict::Allow);
    assert_eq!(verdict(&host, &pair(libc::AF_INET)), refused);
}

#[test]
fn clone_may_fork_and_make_threads_but_not_namespaces() {
    let progs = bpf(Network::None).unwrap();
    let clone = |flags: i32| call(libc::SYS_clone, &[(flags | libc::SIGCHLD) as u64]);
    let thread =
        libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES | libc::CLONE_SIGHAND | libc::CLONE_THREAD;
    assert_eq!(verdict(&progs, &clone(0)), Verdict::Allow);
    assert_eq!(verdict(&progs, &clone(thread)), Verdict::Allow);
    for flag in [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWCGROUP,
    ] {
        assert_eq!(verdict(&progs, &clone(flag)), Verdict::Errno(libc::EPERM), "flag {flag:#x}");
    }
}

#[test]
fn personality_keeps_to_the_usual_personas() {
    let progs = bpf(Network::None).unwrap();
    let personality = |p: u64| call(libc::SYS_personality, &[p]);
    for p in PERSONAS {
        assert_eq!(verdict(&progs, &personality(p)), Verdict::Allow, "{p:#x}");
    }
    // MMAP_PAGE_ZERO maps page 0, which turns kernel NULL dereferences into exploits.
    assert_eq!(verdict(&progs, &personality(0x0010_0000)), Verdict::Errno(libc::EPERM));
}

#[test]
fn the_programs_fit_the_kernel_limit() {
    for progs in both() {
        assert_eq!(progs.len(), 4);
        assert!(progs.iter().all(|p| !p.is_empty() && p.len() < 4096), "{:?}", progs.iter().map(Vec::len));
    }
}

#[test]
fn the_docker_profile_names_the_same_calls() {
    let profile = docker_profile(Network::None);
    assert_eq!(profile["defaultErrnoRet"], libc::ENOSYS);
    assert_eq!(profile["architectures"], json!([DOCKER_ARCH]));
    let rules = profile["syscalls"].as_array().unwrap();
    let names = |action: &str| -> Vec<String> {
        rules
            .iter()
            .filter(|r| {
                r["action"] == action && r.get("args").is_none_or(|a| a.as_array().is_none_or(Vec::is_empty))
            })
            .flat_map(|r| r["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()))
            .collect()
    };
    let allowed = names("SCMP_ACT_ALLOW");
    assert!(allowed.contains(&"read".to_string()) && !allowed.contains(&"socket".to_string()));
    assert!(!allowed.contains(&"clone3".to_string()));
    let refused = names("SCMP_ACT_ERRNO");
    assert_eq!(refused.len(), table::REFUSED.len() + 1);
    let clone3 = rules.iter().find(|r| r["names"] == json!(["clone3"])).expect("a clone3 rule");
    assert_eq!(clone3["errnoRet"], libc::ENOSYS);
    let sockets: Vec<&Value> = rules.iter().filter(|r| r["names"] == json!(["socket"])).collect();
    assert_eq!(sockets.len(), 1, "only AF_UNIX without network: {sockets:?}");
    assert_eq!(sockets[0]["args"][0]["value"], libc::AF_UNIX);
}

#[test]
fn no_call_is_listed_twice() {
    let mut seen = std::collections::BTreeSet::new();
    for s in table::ALLOWED.iter().chain(table::REFUSED) {
        assert!(seen.insert(s.nr), "{} ({}) is listed twice", s.name, s.nr);
    }
}
