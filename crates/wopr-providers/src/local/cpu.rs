//! The instruction sets the embedded engine is compiled for, checked against this CPU before it runs.
//!
//! ggml, llama.cpp's tensor library, is compiled with the instruction sets that the `GGML_*` variables
//! in the workspace's `.cargo/config.toml` switch on (x86-64-v3: AVX, AVX2, FMA, F16C, BMI2), while the
//! Rust code, and llama.cpp outside ggml's CPU kernels, stay on baseline x86-64. Those sets make the
//! engine several times faster (docs/ARCHITECTURE.md has the figures), but a CPU without them would die
//! of SIGILL in the first matrix product. So the local engine, and only it, checks the CPU first and
//! refuses with an error that says what to do; every other command runs on any x86-64 CPU.
//!
//! What ggml was compiled for comes from ggml itself (`ggml_cpu_has_*`, answered from its compiler's
//! predefined macros), so the check holds whatever settings built it.

use llama_cpp_sys_2 as ggml;

/// An instruction set ggml can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InstructionSet {
    /// The CPU features it needs, as `is_x86_feature_detected!` names them.
    features: &'static [&'static str],
    /// The ggml build variable that switches it on.
    variable: &'static str,
}

const AVX: InstructionSet = InstructionSet { features: &["avx"], variable: "GGML_AVX" };
const AVX2: InstructionSet = InstructionSet { features: &["avx2"], variable: "GGML_AVX2" };
const FMA: InstructionSet = InstructionSet { features: &["fma"], variable: "GGML_FMA" };
const F16C: InstructionSet = InstructionSet { features: &["f16c"], variable: "GGML_F16C" };
const BMI2: InstructionSet = InstructionSet { features: &["bmi2"], variable: "GGML_BMI2" };
const AVX_VNNI: InstructionSet = InstructionSet { features: &["avxvnni"], variable: "GGML_AVX_VNNI" };
/// `GGML_AVX512` compiles with -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw.
const AVX512: InstructionSet = InstructionSet {
    features: &["avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"],
    variable: "GGML_AVX512",
};
const AVX512_VBMI: InstructionSet =
    InstructionSet { features: &["avx512vbmi"], variable: "GGML_AVX512_VBMI" };
const AVX512_VNNI: InstructionSet =
    InstructionSet { features: &["avx512vnni"], variable: "GGML_AVX512_VNNI" };
const AVX512_BF16: InstructionSet =
    InstructionSet { features: &["avx512bf16"], variable: "GGML_AVX512_BF16" };

/// The instruction sets this binary's ggml was compiled to use (none off x86).
#[allow(unsafe_code)]
pub(crate) fn compiled_for() -> Vec<InstructionSet> {
    // SAFETY: each of these takes no argument, touches no state and returns a constant fixed when ggml
    // was compiled (`#if defined(__AVX2__) return 1;`), so it is sound to call at any time, and on any
    // CPU, including one that lacks the instruction set it reports.
    let reported = unsafe {
        [
            (ggml::ggml_cpu_has_avx(), AVX),
            (ggml::ggml_cpu_has_avx2(), AVX2),
            (ggml::ggml_cpu_has_fma(), FMA),
            (ggml::ggml_cpu_has_f16c(), F16C),
            (ggml::ggml_cpu_has_bmi2(), BMI2),
            (ggml::ggml_cpu_has_avx_vnni(), AVX_VNNI),
            (ggml::ggml_cpu_has_avx512(), AVX512),
            (ggml::ggml_cpu_has_avx512_vbmi(), AVX512_VBMI),
            (ggml::ggml_cpu_has_avx512_vnni(), AVX512_VNNI),
            (ggml::ggml_cpu_has_avx512_bf16(), AVX512_BF16),
        ]
    };
    reported.into_iter().filter(|(has, _)| *has != 0).map(|(_, set)| set).collect()
}

/// `Err` with a message for the user when this CPU lacks an instruction set the engine was built for.
pub(crate) fn check() -> Result<(), String> {
    unsupported(&compiled_for(), cpu_has).map_or(Ok(()), Err)
}

/// The refusal for a CPU that has only the features `has` accepts, or `None` if it has every one of
/// `compiled_for`.
fn unsupported(compiled_for: &[InstructionSet], has: impl Fn(&str) -> bool) -> Option<String> {
    let lacks = |set: &&InstructionSet| !set.features.iter().all(|f| has(f));
    let missing: Vec<&InstructionSet> = compiled_for.iter().filter(lacks).collect();
    if missing.is_empty() {
        return None;
    }
    let names = |sets: &mut dyn Iterator<Item = &InstructionSet>| {
        sets.map(|set| set.variable.trim_start_matches("GGML_").replace('_', "-"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let switch_off: Vec<String> = missing.iter().map(|set| format!("{}=OFF", set.variable)).collect();
    Some(format!(
        "this CPU lacks {}, which the embedded model needs (wopr's llama.cpp is built for {}); use another \
         provider (`wopr providers` lists them), or build wopr for this CPU: `cargo clean -p llama-cpp-sys-2 \
         && {} cargo build --release`",
        names(&mut missing.iter().copied()),
        names(&mut compiled_for.iter()),
        switch_off.join(" ")
    ))
}

/// Whether this CPU (and the OS, which must save the AVX registers) supports `feature`.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
fn cpu_has(feature: &str) -> bool {
    // The macro wants a literal, hence one arm per feature of the sets above.
    match feature {
        "avx" => std::arch::is_x86_feature_detected!("avx"),
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "fma" => std::arch::is_x86_feature_detected!("fma"),
        "f16c" => std::arch::is_x86_feature_detected!("f16c"),
        "bmi2" => std::arch::is_x86_feature_detected!("bmi2"),
        "avxvnni" => std::arch::is_x86_feature_detected!("avxvnni"),
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        "avx512cd" => std::arch::is_x86_feature_detected!("avx512cd"),
        "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
        "avx512dq" => std::arch::is_x86_feature_detected!("avx512dq"),
        "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
        "avx512vbmi" => std::arch::is_x86_feature_detected!("avx512vbmi"),
        "avx512vnni" => std::arch::is_x86_feature_detected!("avx512vnni"),
        "avx512bf16" => std::arch::is_x86_feature_detected!("avx512bf16"),
        _ => false,
    }
}

/// Off x86 ggml reports none of the sets above, so nothing is ever asked.
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
fn cpu_has(_feature: &str) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64_V3: [InstructionSet; 5] = [AVX, AVX2, FMA, F16C, BMI2];

    #[test]
    fn a_cpu_without_avx2_is_refused_with_what_it_lacks_and_how_to_go_on() {
        // An Ivy Bridge: AVX and F16C, but no AVX2, FMA or BMI2.
        let ivy_bridge = |f: &str| matches!(f, "avx" | "f16c");
        let message = unsupported(&X86_64_V3, ivy_bridge).expect("an Ivy Bridge lacks AVX2");
        assert!(
            message.starts_with("this CPU lacks AVX2, FMA, BMI2, which the embedded model needs"),
            "{message}"
        );
        assert!(message.contains("built for AVX, AVX2, FMA, F16C, BMI2"), "{message}");
        assert!(message.contains("use another provider (`wopr providers` lists them)"), "{message}");
        assert!(
            message.ends_with(
                "`cargo clean -p llama-cpp-sys-2 && GGML_AVX2=OFF GGML_FMA=OFF GGML_BMI2=OFF cargo build --release`"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_set_counts_as_missing_when_any_of_its_features_is() {
        let no_avx512vl = |f: &str| f.starts_with("avx512") && f != "avx512vl";
        let message = unsupported(&[AVX512], no_avx512vl).expect("AVX-512 needs VL too");
        assert!(message.starts_with("this CPU lacks AVX512,"), "{message}");
        assert!(message.contains("GGML_AVX512=OFF cargo"), "{message}");
    }

    #[test]
    fn a_cpu_with_every_compiled_set_is_accepted() {
        let haswell = |f: &str| matches!(f, "avx" | "avx2" | "fma" | "f16c" | "bmi2");
        assert_eq!(unsupported(&X86_64_V3, haswell), None);
        assert_eq!(unsupported(&[], |_| false), None, "a baseline build runs anywhere");
    }

    /// The workspace's `.cargo/config.toml` builds ggml for x86-64-v3. If that setting is lost, or a
    /// build directory configured before it is reused (llama-cpp-sys-2 runs CMake's configure step only
    /// once per build directory), the engine silently falls back to its slow baseline kernels.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn this_build_of_ggml_uses_x86_64_v3() {
        assert_eq!(
            compiled_for(),
            X86_64_V3,
            "ggml was not compiled with the GGML_* settings of .cargo/config.toml: if they are there, \
             the build directory predates them; run `cargo clean -p llama-cpp-sys-2`"
        );
    }
}
