//! `wopr model pull|list`.

use anyhow::Result;
use serde_json::json;

use super::Ctx;
use crate::cli::ModelCmd;
use crate::output;

pub fn run(ctx: &Ctx, cmd: ModelCmd) -> Result<()> {
    match cmd {
        ModelCmd::Pull { force } => pull(ctx, force),
        ModelCmd::List { json } => list(ctx, json),
    }
}

fn pull(ctx: &Ctx, force: bool) -> Result<()> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )?
        .progress_chars("=> "),
    );
    bar.set_message("downloading SmolLM2-135M-Instruct");
    let pulled = super::runtime()?.block_on(wopr_providers::model_pull::pull_default_model(
        &ctx.home.models_dir(),
        force,
        |done, total| {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(done);
        },
    ));
    bar.finish_and_clear();
    let pulled = pulled?;
    let verb = if pulled.downloaded { "Installed" } else { "Already installed:" };
    println!("{verb} {} ({:.0} MB)", pulled.path.display(), pulled.size as f64 / 1e6);
    Ok(())
}

fn list(ctx: &Ctx, json: bool) -> Result<()> {
    let dir = ctx.home.models_dir();
    let active = ctx.provider_settings()?.local_model_path();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "gguf"));
    files.sort();
    if let Some(a) = &active
        && !files.contains(a)
    {
        files.insert(0, a.clone());
    }
    let rows: Vec<_> = files
        .iter()
        .map(|p| {
            let size = std::fs::metadata(p).map(|m| m.len()).ok();
            json!({"path": p, "size": size, "active": Some(p) == active.as_ref()})
        })
        .collect();
    if json {
        return output::json(&rows);
    }
    if rows.is_empty() {
        println!("No models in {}: run `wopr model pull`", dir.display());
    }
    for (p, r) in files.iter().zip(&rows) {
        let mark = if r["active"] == true { "*" } else { " " };
        let size =
            r["size"].as_u64().map(|s| format!("{:.0} MB", s as f64 / 1e6)).unwrap_or("missing".into());
        println!("{mark} {}  ({size})", p.display());
    }
    Ok(())
}
