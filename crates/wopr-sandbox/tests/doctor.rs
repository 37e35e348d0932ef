//! The doctor, run for real on this host: every probe of both backends must pass here.

use test_support::Dockerd;
use wopr_sandbox::doctor::{self, Verdict};
use wopr_sandbox::{Backend, DockerSandbox, NativeSandbox};

#[test]
fn every_property_holds_on_this_host_for_both_backends() {
    let native = NativeSandbox::new().unwrap();
    let started = std::time::Instant::now();
    let n = doctor::probe_backend(Backend::Native, &native, "native".into());
    let native_time = started.elapsed();
    let docker = DockerSandbox::new().with_host(Dockerd::shared().host());
    docker.build_image(&mut |_| {}).unwrap();
    let d = doctor::probe_docker(&docker);
    let report = doctor::Report { backends: vec![n, d] };
    let table = report.to_table();
    println!("{table}");
    for b in &report.backends {
        assert!(b.available, "{table}");
        assert!(b.probes.len() >= 12, "{table}");
        assert!(b.probes.iter().all(|p| p.verdict == Verdict::Ok), "{table}");
    }
    assert_eq!(report.usable(), vec![Backend::Native, Backend::Docker]);
    assert!(native_time.as_secs() < 10, "the native probes took {native_time:?}");
}
