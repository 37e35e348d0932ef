//! The GBNF grammar that holds a tool call to well-formed JSON naming an offered tool.
//!
//! Small models are told to answer `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (see
//! `prompt::tool_instructions`), but left alone they misspell names and break the JSON. Once the model has
//! written the opening tag, generation continues under this grammar (llama.cpp's grammar sampler), so the
//! call that follows always parses and always names a tool that exists.

use crate::ToolSpec;

use super::prompt::TOOL_CALL_CLOSE;

/// The grammar of what follows `<tool_call>`: `{"name": <one of tools>, "arguments": {...}}</tool_call>`.
pub(crate) fn tool_call(tools: &[ToolSpec]) -> String {
    let names: Vec<String> =
        tools.iter().map(|t| gbnf_literal(&format!("\"{}\"", json_escape(&t.name)))).collect();
    let close = gbnf_literal(TOOL_CALL_CLOSE);
    format!(
        r#"root ::= ws "{{" ws "\"name\"" ws ":" ws name ws "," ws "\"arguments\"" ws ":" ws object ws "}}" ws {close}
name ::= {names}
object ::= "{{" ws ( pair ( ws "," ws pair )* )? ws "}}"
pair ::= string ws ":" ws value
value ::= object | array | string | number | "true" | "false" | "null"
array ::= "[" ws ( value ( ws "," ws value )* )? ws "]"
string ::= "\"" char* "\""
char ::= [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] )
number ::= "-"? [0-9]+ ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
ws ::= [ \t\n]{{0,4}}
"#,
        names = names.join(" | ")
    )
}

/// `s` as a JSON string body (the tool name inside its quotes).
fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// `s` as a GBNF string literal.
fn gbnf_literal(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_become_escaped_alternatives_and_the_close_tag_ends_the_call() {
        let tool = |name: &str| ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters: serde_json::json!({}),
        };
        let g = tool_call(&[tool("shell"), tool("we\"ird")]);
        assert!(g.contains(r#"name ::= "\"shell\"" | "\"we\\\"ird\"""#), "{g}");
        assert!(g.lines().next().unwrap().ends_with(r#""</tool_call>""#), "{g}");
    }
}
