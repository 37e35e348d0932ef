//! The seccomp filter of every sandboxed command, for both backends: an allow-list of the system calls
//! ordinary programs make ([`table`]), compiled to BPF for the native backend and written as a Docker
//! seccomp profile for the Docker one.
//!
//! Verdicts, from the most to the least severe:
//! - a call through another ABI (an x32 number on x86-64, `int 0x80` into the i386 table, any foreign
//!   audit architecture) kills the process: the lists are for the native table only;
//! - a call in [`table::REFUSED`], `clone` with a namespace flag, or `personality` with an unusual
//!   persona fails with `EPERM`;
//! - a socket of a family the policy does not need fails with `EAFNOSUPPORT`: only `AF_UNIX`, plus
//!   `AF_INET`/`AF_INET6` and routing netlink when the policy shares the host's network. Without network
//!   the sandbox's namespace is empty, so IP sockets could reach nothing; refusing them keeps the IP
//!   stack out of reach too, and `AF_VSOCK`, which no network namespace fences, never opens;
//! - every call not in the lists (including `clone3`, and calls added to later kernels) fails with
//!   `ENOSYS`, as if this kernel lacked it.
//!
//! The native filter is four programs, installed in this order: the ABI guard, the allow-list (anything
//! unknown: `ENOSYS`), the refusals (`EPERM`), the socket families (`EAFNOSUPPORT`). The kernel runs all
//! of them and keeps the most severe action; every call gets at most one errno, because the allow-list
//! lets the refused and narrowed calls through and leaves them to the later programs.

mod table;

use std::collections::BTreeMap;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};
use serde_json::{Value, json};

use crate::policy::Network;

/// `clone` flags that would create namespaces.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

/// Personas `personality` may set (as Docker allows): Linux, 32-bit Linux, uname 2.6, both, and the query.
const PERSONAS: [u64; 5] = [0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// The x32 ABI marks its system call numbers with this bit.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("the sandbox's seccomp lists know the x86_64 and aarch64 system call tables only");

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "x86_64")]
const DOCKER_ARCH: &str = "SCMP_ARCH_X86_64";
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;
#[cfg(target_arch = "aarch64")]
const DOCKER_ARCH: &str = "SCMP_ARCH_AARCH64";

/// Socket families a policy may create.
fn families(network: Network) -> &'static [i32] {
    match network {
        Network::None => &[libc::AF_UNIX],
        Network::Host => &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK],
    }
}

/// The native filter's programs, in installation order (see the module documentation).
pub(crate) fn bpf(network: Network) -> Result<Vec<Vec<libc::sock_filter>>, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("{e:?}"))?;
    let errno = |e: i32| SeccompAction::Errno(e as u32);
    let known: BTreeMap<i64, Vec<SeccompRule>> =
        table::ALLOWED.iter().chain(table::REFUSED).map(|s| (s.nr, Vec::new())).collect();
    let mut refused: BTreeMap<i64, Vec<SeccompRule>> =
        table::REFUSED.iter().map(|s| (s.nr, Vec::new())).collect();
    let mask = |flag: u64| arg(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(flag), flag);
    let namespace_clone = (0..64)
        .map(|bit| 1u64 << bit)
        .filter(|flag| NAMESPACE_FLAGS & flag != 0)
        .map(|flag| rule(vec![mask(flag)?]))
        .collect::<Result<Vec<_>, _>>()?;
    refused.insert(libc::SYS_clone, namespace_clone);
    let other_persona = PERSONAS.iter().map(|&p| arg(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, p));
    refused.insert(libc::SYS_personality, vec![rule(other_persona.collect::<Result<_, _>>()?)?]);
    let family_ne = |f: &i32| arg(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, *f as u64);
    let mut socket = vec![rule(families(network).iter().map(family_ne).collect::<Result<_, _>>()?)?];
    if families(network).contains(&libc::AF_NETLINK) {
        // Routing netlink only (addresses and routes, as `getaddrinfo` and `ip` read them).
        socket.push(rule(vec![
            arg(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, libc::AF_NETLINK as u64)?,
            arg(2, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, libc::NETLINK_ROUTE as u64)?,
        ])?);
    }
    let socketpair = vec![rule(vec![family_ne(&libc::AF_UNIX)?])?];
    let family = BTreeMap::from([(libc::SYS_socket, socket), (libc::SYS_socketpair, socketpair)]);
    let filters = [
        SeccompFilter::new(known, errno(libc::ENOSYS), SeccompAction::Allow, arch),
        SeccompFilter::new(refused, SeccompAction::Allow, errno(libc::EPERM), arch),
        SeccompFilter::new(family, SeccompAction::Allow, errno(libc::EAFNOSUPPORT), arch),
    ];
    let mut programs = vec![abi_guard()];
    for filter in filters {
        let prog: seccompiler::BpfProgram = filter
            .map_err(|e| e.to_string())?
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?;
        programs.push(
            prog.iter().map(|f| libc::sock_filter { code: f.code, jt: f.jt, jf: f.jf, k: f.k }).collect(),
        );
    }
    Ok(programs)
}

fn arg(index: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(index, len, op, value).map_err(|e| e.to_string())
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions).map_err(|e| e.to_string())
}

/// Kills a process whose call is not for the native table: another audit architecture, or a number with
/// the x32 bit (x32 shares x86-64's audit architecture, so only the number tells them apart).
fn abi_guard() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    // Offsets into `struct seccomp_data`: the number at 0, the audit architecture at 4.
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    vec![
        op(LD_W_ABS, 0, 0, 4),
        op(JEQ, 0, 3, AUDIT_ARCH),
        op(LD_W_ABS, 0, 0, 0),
        op(JSET, 1, 0, X32_SYSCALL_BIT),
        op(RET, 0, 0, libc::SECCOMP_RET_ALLOW),
        op(RET, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
    ]
}

/// The same rules as a Docker seccomp profile (given with `--security-opt seccomp=<file>`). Docker's
/// profile language cannot say "none of these families", so a refused family fails with the default
/// `ENOSYS` there instead of `EAFNOSUPPORT`, and so does a namespace `clone`.
pub(crate) fn docker_profile(network: Network) -> Value {
    let narrowed = [libc::SYS_socket, libc::SYS_socketpair, libc::SYS_clone, libc::SYS_personality];
    let plain: Vec<&str> =
        table::ALLOWED.iter().filter(|s| !narrowed.contains(&s.nr)).map(|s| s.name).collect();
    let eq = |index: u32, value: u64| json!({"index": index, "value": value, "op": "SCMP_CMP_EQ"});
    let allow =
        |name: &str, args: Vec<Value>| json!({"names": [name], "action": "SCMP_ACT_ALLOW", "args": args});
    let mut syscalls = vec![json!({"names": plain, "action": "SCMP_ACT_ALLOW"})];
    for &family in families(network) {
        let mut args = vec![eq(0, family as u64)];
        if family == libc::AF_NETLINK {
            args.push(eq(2, libc::NETLINK_ROUTE as u64));
        }
        syscalls.push(allow("socket", args));
    }
    syscalls.push(allow("socketpair", vec![eq(0, libc::AF_UNIX as u64)]));
    syscalls.push(allow(
        "clone",
        vec![json!({"index": 0, "value": NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"})],
    ));
    for persona in PERSONAS {
        syscalls.push(allow("personality", vec![eq(0, persona)]));
    }
    let refused: Vec<&str> = table::REFUSED.iter().map(|s| s.name).collect();
    syscalls.push(json!({"names": refused, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}));
    // Said explicitly: daemons that ignore `defaultErrnoRet` answer unknown calls with EPERM, and glibc
    // falls back to `clone` only on ENOSYS.
    syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::ENOSYS,
        "architectures": [DOCKER_ARCH],
        "syscalls": syscalls,
    })
}

#[cfg(test)]
mod tests;
