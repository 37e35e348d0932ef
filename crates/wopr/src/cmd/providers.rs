//! `wopr providers`: every provider, whether it is usable here, and why not.

use anyhow::Result;

use super::Ctx;
use crate::output;

pub fn run(ctx: &Ctx, json: bool) -> Result<()> {
    let list = wopr_providers::detect(&ctx.provider_settings()?);
    if json {
        return output::json(&list);
    }
    let chosen = list.iter().position(|a| a.available);
    println!("{:<2}{:<19}{:<13}DETAIL", "", "PROVIDER", "STATUS");
    for (i, a) in list.iter().enumerate() {
        let mark = if Some(i) == chosen { "*" } else { "" };
        let status = if a.available { "available" } else { "unavailable" };
        println!("{mark:<2}{:<19}{status:<13}{}", a.name.as_str(), a.detail);
    }
    match chosen {
        Some(i) => println!("\n* used by sessions without a provider of their own: {}", list[i].name),
        None => println!(
            "\nNo provider is available: run `wopr model pull` for the offline model, or set an API key."
        ),
    }
    Ok(())
}
