//! What a sent message looks like on the employer's phone. For a template
//! the simulator does what Meta does: it takes the approved body (from the
//! message catalog, which holds the text registered with Meta) and fills in
//! the parameters the send carried; the buttons get their approved titles.

use super::phone::{ChatItemKind, TapButton};
use serde_json::Value;

pub(super) fn outbound(v: &Value) -> ChatItemKind {
    match v["type"].as_str().unwrap_or_default() {
        "text" => ChatItemKind::Text {
            body: v["text"]["body"].as_str().unwrap_or_default().to_owned(),
        },
        "interactive" => {
            let i = &v["interactive"];
            let buttons = i["action"]["buttons"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| TapButton {
                    payload: b["reply"]["id"].as_str().unwrap_or_default().to_owned(),
                    title: b["reply"]["title"].as_str().unwrap_or_default().to_owned(),
                })
                .collect();
            ChatItemKind::Interactive {
                body: i["body"]["text"].as_str().unwrap_or_default().to_owned(),
                buttons,
            }
        }
        "template" => template(&v["template"]),
        kind @ ("image" | "document") => ChatItemKind::Image {
            media_id: v[kind]["id"].as_str().unwrap_or_default().to_owned(),
            caption: v[kind]["caption"].as_str().map(str::to_owned),
        },
        other => ChatItemKind::System {
            body: format!("(pesan jenis {other})"),
        },
    }
}

fn template(t: &Value) -> ChatItemKind {
    let name = t["name"].as_str().unwrap_or_default().to_owned();
    let components = t["components"].as_array().cloned().unwrap_or_default();
    let params: Vec<String> = components
        .iter()
        .filter(|c| c["type"] == "body")
        .flat_map(|c| c["parameters"].as_array().cloned().unwrap_or_default())
        .map(|p| {
            p["text"]
                .as_str()
                .or_else(|| p["currency"]["fallback_value"].as_str())
                .or_else(|| p["date_time"]["fallback_value"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let def = crate::replies::outgoing::catalog()
        .ok()
        .and_then(|c| c.by_whatsapp_name(&name));
    let body = match def {
        Some(d) => crate::messages::fill_body(&d.whatsapp.body, &params),
        // Not one of ours: show what arrived rather than nothing.
        None => format!("[{name}] {}", params.join(" · ")),
    };
    let buttons = components
        .iter()
        .filter(|c| c["type"] == "button" && c["sub_type"] == "quick_reply")
        .map(|c| {
            let index: usize = c["index"]
                .as_str()
                .and_then(|i| i.parse().ok())
                .unwrap_or(0);
            let payload = c["parameters"][0]["payload"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let title = def
                .and_then(|d| d.whatsapp.buttons.get(index))
                .map(|b| b.title.clone())
                .unwrap_or_else(|| payload.clone());
            TapButton { payload, title }
        })
        .collect();
    ChatItemKind::Template {
        name,
        body,
        buttons,
    }
}
