//! `wopr model pull|list`.

use anyhow::Result;

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
    let files = wopr_daemon::service::model_files(&ctx.home, &ctx.provider_settings()?);
    if json {
        return output::json(&files);
    }
    if files.is_empty() {
        println!("No models in {}: run `wopr model pull`", ctx.home.models_dir().display());
    }
    for f in &files {
        let mark = if f.active { "*" } else { " " };
        let size = f.size.map(|s| format!("{:.0} MB", s as f64 / 1e6)).unwrap_or("missing".into());
        println!("{mark} {}  ({size})", f.path);
    }
    Ok(())
}
