//! `wopr id`, `wopr id init`, `wopr id rotate`.

use anyhow::{Result, anyhow};
use serde_json::json;
use wopr_identity::{Identity, RotationReason};

use super::Ctx;
use crate::cli::{IdArgs, IdCmd};
use crate::exit::Exit;
use crate::output;

pub fn run(ctx: &Ctx, args: IdArgs) -> Result<()> {
    match args.command {
        None => show(ctx, args.json),
        Some(IdCmd::Init { force }) => {
            let id = ctx.home.init_identity(force)?;
            println!("Identity created in {}", ctx.home.identity_path().display());
            print_id(&id, false)
        }
        Some(IdCmd::Rotate { reason, broadcast, json }) => {
            let parsed = RotationReason::parse(&reason).ok_or_else(|| {
                Exit::invalid(format!("unknown reason {reason:?}: use scheduled, compromise or upgrade"))
            })?;
            if broadcast {
                return super::rotate::broadcast(ctx, &reason, json);
            }
            let reason = parsed;
            let (id, record) = ctx.home.rotate_identity(reason)?;
            // Kept local on purpose: nodes started later must not broadcast it as an interrupted one.
            ctx.home.outbox()?.note_rotation(&record.new_key, wopr_store::now_ms())?;
            if json {
                return output::json(&record);
            }
            println!(
                "Rotated {} -> {} ({:?}); the record, signed by both keys, is kept in identity.json",
                record.old_key.short(),
                record.new_key.short(),
                reason
            );
            print_id(&id, false)
        }
    }
}

fn show(ctx: &Ctx, json: bool) -> Result<()> {
    let loaded = ctx
        .home
        .load_identity()?
        .ok_or_else(|| anyhow!("no identity yet in {}: run `wopr id init`", ctx.home.root().display()))?;
    print_id(&loaded.identity, json)
}

fn print_id(id: &Identity, json: bool) -> Result<()> {
    let pk = id.public_id();
    if json {
        return output::json(&json!({
            "shortId": pk.short(),
            "publicKey": pk.to_hex(),
            "encryptPub": hex::encode(id.encrypt_pub()),
        }));
    }
    println!("WOPR ID: {}", pk.short());
    println!("Full: {}", pk.to_url());
    println!("Encrypt: {}", hex::encode(id.encrypt_pub()));
    Ok(())
}
