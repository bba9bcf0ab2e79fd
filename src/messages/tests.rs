use super::*;
use crate::domain::{Money, Stage};
use crate::whatsapp::{ButtonParameter, TemplateComponent};

fn catalog() -> Catalog {
    Catalog::load().expect("embedded templates load")
}

/// A one-file catalog, for tests of how a broken template fails.
fn single(name: &str, front: &str, body: &str) -> Result<Catalog> {
    Catalog::from_sources([(name.to_string(), format!("+++\n{front}\n+++\n{body}"))])
}

const MINIMAL_FRONT: &str = r#"[whatsapp]
name = "t_test"
category = "utility"
body = "Halo {{1}}, terima kasih."
params = ["employer_name"]"#;

#[test]
fn every_template_file_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/messages");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".txt").map(str::to_owned)
        })
        .collect();
    on_disk.sort();
    let catalog = catalog();
    let embedded: Vec<&str> = catalog.names().collect();
    assert_eq!(on_disk, embedded);
}

#[test]
fn ships_the_stage_and_conversation_messages() {
    let c = catalog();
    for stage in Stage::ALL {
        if let Some(name) = stage.message() {
            assert!(c.get(name).is_some(), "no template for stage {stage}");
        }
    }
    for name in [
        "promise_confirmed",
        "ask_promise_date",
        "payment_link",
        "amount_breakdown",
        "opt_out_confirmed",
        "officer_will_contact",
        "payment_thanks",
        "payment_claim_ack",
    ] {
        assert!(c.get(name).is_some(), "{name}");
    }
}

#[test]
fn every_template_renders_text_and_whatsapp_parameters() {
    let c = catalog();
    let ctx = MessageContext::sample();
    for name in c.names() {
        let text = c.render_text(name, &ctx).unwrap();
        assert!(text.contains("Bapak/Ibu Budi Santoso"), "{name}: {text}");
        assert!(
            !text.contains("none") && !text.contains("{{"),
            "{name}: {text}"
        );
        assert!(!text.contains("\n\n\n"), "{name}: {text}");
        let tpl = c.whatsapp_template(name, &ctx, "id").unwrap();
        let def = c.get(name).unwrap();
        assert_eq!(tpl.name, def.whatsapp.name);
        assert_eq!(tpl.language.code, "id");
        assert_eq!(tpl.body_texts().len(), def.whatsapp.params.len(), "{name}");
        for p in tpl.body_texts() {
            assert!(!p.contains('\n') && !p.contains('\t') && !p.contains("    "));
        }
        let body = c.render_whatsapp_body(name, &ctx).unwrap();
        assert!(!body.contains("{{"), "{name}: {body}");
    }
}

#[test]
fn reminder_text_reads_like_a_polite_indonesian_letter() {
    let text = catalog()
        .render_text("reminder_1", &MessageContext::sample())
        .unwrap();
    let expected = [
        "Yth. Bapak/Ibu Budi Santoso,",
        "PT Sinar Riau Abadi (NPP 19010021)",
        "- Periode Desember 2025: Rp12.500.000, jatuh tempo Kamis, 15 Januari 2026",
        "- Periode Januari 2026: Rp12.750.000, jatuh tempo Senin, 16 Februari 2026",
        "Total iuran: Rp25.250.000",
        "Kode iuran: 12345678901",
        "apabila sudah melakukan pembayaran, mohon abaikan pesan ini",
        "BPJS Ketenagakerjaan Cabang Pekanbaru Kota di 0761-123456",
        "Terima kasih atas perhatian dan kerja samanya.",
    ];
    for line in expected {
        assert!(
            text.to_lowercase().contains(&line.to_lowercase()),
            "missing {line:?} in:\n{text}"
        );
    }
}

#[test]
fn absent_contact_name_addresses_the_company_management() {
    let ctx = MessageContext::sample_minimal();
    let c = catalog();
    let text = c.render_text("reminder_1", &ctx).unwrap();
    assert!(text.starts_with("Yth. Bapak/Ibu Pimpinan PT Sinar Riau Abadi,"));
    assert!(!text.contains("Kode iuran"), "{text}");
    let tpl = c.whatsapp_template("reminder_1", &ctx, "id").unwrap();
    assert_eq!(
        tpl.body_texts()[0],
        "Bapak/Ibu Pimpinan PT Sinar Riau Abadi"
    );
}

#[test]
fn parameters_follow_the_declared_order() {
    let c = catalog();
    let tpl = c
        .whatsapp_template("reminder_3", &MessageContext::sample(), "id")
        .unwrap();
    assert_eq!(
        tpl.body_texts(),
        vec![
            "Bapak/Ibu Budi Santoso",
            "PT Sinar Riau Abadi",
            "19010021",
            "Desember 2025, Januari 2026",
            "Rp25.250.000",
            "Kamis, 15 Januari 2026",
            "Rp755.000 (perkiraan)",
            "Rp26.005.000",
            "12345678901",
            "BPJS Ketenagakerjaan Cabang Pekanbaru Kota, telp. 0761-123456",
        ]
    );
}

#[test]
fn reminder_buttons_carry_the_case_id_in_declared_order() {
    let tpl = catalog()
        .whatsapp_template("reminder_1", &MessageContext::sample(), "id")
        .unwrap();
    let buttons: Vec<(String, String)> = tpl
        .components
        .iter()
        .filter_map(|c| match c {
            TemplateComponent::Button {
                index, parameters, ..
            } => match &parameters[0] {
                ButtonParameter::Payload { payload } => Some((index.clone(), payload.clone())),
                ButtonParameter::Text { .. } => None,
            },
            _ => None,
        })
        .collect();
    let expected = [
        ("0", "PAY_LINK:42"),
        ("1", "PROMISE:42"),
        ("2", "PAID:42"),
        ("3", "OFFICER:42"),
    ];
    assert_eq!(
        buttons,
        expected.map(|(i, p)| (i.to_string(), p.to_string()))
    );
}

#[test]
fn template_language_comes_from_config_unless_the_file_overrides_it() {
    let c = catalog();
    let tpl = c
        .whatsapp_template("reminder_1", &MessageContext::sample(), "en_US")
        .unwrap();
    assert_eq!(tpl.language.code, "en_US");
    assert_eq!(tpl.language.policy, "deterministic");
    let front = MINIMAL_FRONT.replace("category", "language = \"ms\"\ncategory");
    let c = single("t", &front, "Halo {{ employer_name }}").unwrap();
    let tpl = c
        .whatsapp_template("t", &MessageContext::sample(), "id")
        .unwrap();
    assert_eq!(tpl.language.code, "ms");
}

#[test]
fn perkiraan_marks_only_estimated_late_fees() {
    let c = catalog();
    let mut ctx = MessageContext::sample();
    let text = c.render_text("reminder_3", &ctx).unwrap();
    assert!(text.contains("denda Rp500.000\n"), "{text}");
    assert!(text.contains("denda Rp255.000 (perkiraan)"), "{text}");

    for bill in &mut ctx.bills {
        bill.late_fee_estimated = false;
    }
    for name in [
        "reminder_3",
        "warning",
        "amount_breakdown",
        "payment_thanks",
    ] {
        let text = c.render_text(name, &ctx).unwrap();
        assert!(!text.contains("perkiraan"), "{name}: {text}");
        let params = c.body_params(name, &ctx).unwrap().join(" | ");
        assert!(!params.contains("perkiraan"), "{name}: {params}");
    }
    let params = c.body_params("amount_breakdown", &ctx).unwrap();
    assert_eq!(
        params[3],
        "Desember 2025: iuran Rp12.500.000, denda Rp500.000; Januari 2026: iuran Rp12.750.000, denda Rp255.000"
    );
}

#[test]
fn settled_bills_drop_out_of_reminders() {
    let c = catalog();
    let mut ctx = MessageContext::sample();
    ctx.bills[0].paid = ctx.bills[0].amount;
    let text = c.render_text("reminder_1", &ctx).unwrap();
    assert!(!text.contains("Desember 2025"), "{text}");
    assert_eq!(ctx.totals().outstanding, Money::from_rupiah(12_750_000));
    let params = c.body_params("reminder_1", &ctx).unwrap();
    assert_eq!(params[3], "Januari 2026");
    assert_eq!(params[5], "Senin, 16 Februari 2026");
}

#[test]
fn thanks_mentions_late_fees_only_when_there_are_some() {
    let c = catalog();
    let mut ctx = MessageContext::sample();
    for bill in &mut ctx.bills {
        bill.paid = bill.amount;
    }
    let text = c.render_text("payment_thanks", &ctx).unwrap();
    assert!(
        text.contains("Desember 2025, Januari 2026 sebesar Rp25.250.000."),
        "{text}"
    );
    assert!(
        text.contains("denda keterlambatan sebesar Rp755.000 (perkiraan)"),
        "{text}"
    );
    for bill in &mut ctx.bills {
        bill.late_fee = Money::ZERO;
    }
    let text = c.render_text("payment_thanks", &ctx).unwrap();
    assert!(!text.contains("denda"), "{text}");
}

#[test]
fn parameters_collapse_white_space_from_imported_names() {
    let mut ctx = MessageContext::sample();
    ctx.employer_name = "PT  Sinar\tRiau\n     Abadi ".into();
    let params = catalog().body_params("reminder_1", &ctx).unwrap();
    assert_eq!(params[1], "PT Sinar Riau Abadi");
}

#[test]
fn a_misspelt_variable_fails_at_load_naming_the_template() {
    let err = single("t", MINIMAL_FRONT, "Halo {{ employer_nmae }}").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("message template `t`:"), "{msg}");
    assert!(msg.contains("undefined"), "{msg}");

    let front = MINIMAL_FRONT.replace(r#"["employer_name"]"#, r#"["employer.name"]"#);
    let err = single("t", &front, "Halo").unwrap_err().to_string();
    assert!(err.starts_with("message template `t`:"), "{err}");
}

#[test]
fn a_missing_variable_in_a_rarely_taken_branch_fails_at_load() {
    // The minimal sample has no contact name, so the else branch runs too.
    let body = "{% if contact_name %}{{ contact_name }}{% else %}{{ pimpinan }}{% endif %}";
    let err = single("t", MINIMAL_FRONT, body).unwrap_err().to_string();
    assert!(err.contains("`t`") && err.contains("undefined"), "{err}");
}

#[test]
fn printing_an_absent_optional_value_is_an_error() {
    let err = single("t", MINIMAL_FRONT, "Link: {{ payment_link }}")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`t`") && err.contains("absent"), "{err}");
    // Declared as required, it loads, and a context without it is refused.
    let front = format!("requires = [\"payment_link\"]\n{MINIMAL_FRONT}");
    let c = single("t", &front, "Link: {{ payment_link }}").unwrap();
    let err = c
        .render_text("t", &MessageContext::sample_minimal())
        .unwrap_err();
    assert!(err.to_string().contains("needs `payment_link`"), "{err}");
}

#[test]
fn placeholders_must_match_the_declared_parameters() {
    let front = MINIMAL_FRONT.replace("Halo {{1}}", "Halo {{1}} {{2}}");
    let err = single("t", &front, "Halo").unwrap_err().to_string();
    assert!(err.contains("placeholders"), "{err}");
}

#[test]
fn a_multi_line_parameter_is_refused_at_load() {
    let front = MINIMAL_FRONT.replace(r#"["employer_name"]"#, r#"['employer_name ~ "\n" ~ npp']"#);
    let err = single("t", &front, "Halo").unwrap_err().to_string();
    assert!(
        err.contains("body parameter 1") && err.contains("new line"),
        "{err}"
    );
}

#[test]
fn unknown_button_payloads_and_long_titles_are_refused() {
    let front =
        format!("{MINIMAL_FRONT}\n[[whatsapp.buttons]]\npayload = \"LATER\"\ntitle = \"Nanti\"");
    let err = single("t", &front, "Halo").unwrap_err().to_string();
    assert!(err.contains("LATER"), "{err}");
    let front = format!(
        "{MINIMAL_FRONT}\n[[whatsapp.buttons]]\npayload = \"PAID\"\ntitle = \"Sudah bayar lunas semuanya\""
    );
    let err = single("t", &front, "Halo").unwrap_err().to_string();
    assert!(err.contains("1 to 20"), "{err}");
}

#[test]
fn unknown_template_is_an_error() {
    let err = catalog()
        .render_text("reminder_9", &MessageContext::sample())
        .unwrap_err();
    assert_eq!(err, MessageError::UnknownTemplate("reminder_9".into()));
}

#[test]
fn interactive_reply_has_the_text_and_up_to_three_buttons() {
    let c = catalog();
    let ctx = MessageContext::sample();
    let i = c.interactive("amount_breakdown", &ctx).unwrap();
    assert_eq!(i.action.buttons.len(), 3);
    assert!(c.interactive("reminder_1", &ctx).is_err(), "four buttons");
    let buttons = c.reply_buttons("payment_link", &ctx).unwrap();
    assert_eq!(buttons[0].id, "PAID:42");
    assert_eq!(buttons[0].title, "Sudah bayar");
}

#[test]
fn template_preview_fills_the_approved_body() {
    let body = catalog()
        .render_whatsapp_body("payment_link", &MessageContext::sample())
        .unwrap();
    assert!(
        body.contains("sebesar Rp25.250.000: https://bayar.example/iuran/19010021?ref=C42"),
        "{body}"
    );
}

/// `cargo test --lib print_message_previews -- --ignored --nocapture` shows
/// every message as text and as the approved template, for review.
#[test]
#[ignore]
fn print_message_previews() {
    let c = catalog();
    for (label, ctx) in [
        ("sample", MessageContext::sample()),
        ("minimal", MessageContext::sample_minimal()),
    ] {
        for name in c.names() {
            let def = c.get(name).unwrap();
            let mut ctx = ctx.clone();
            let full = MessageContext::sample();
            for field in &def.requires {
                ctx.take_field(field, &full);
            }
            println!(
                "===== {name} ({label}) — text\n{}\n",
                c.render_text(name, &ctx).unwrap()
            );
            println!(
                "----- {name} ({label}) — template {}\n{}\n",
                def.whatsapp.name,
                c.render_whatsapp_body(name, &ctx).unwrap()
            );
        }
    }
}

#[test]
fn a_contact_name_with_its_own_salutation_is_not_greeted_twice() {
    // SMILE writes PICs with and without "Bapak"/"Ibu": one stored with
    // an honorific keeps it (written out), one without gets "Bapak/Ibu".
    let c = catalog();
    for (contact, greeted) in [
        ("Bapak Agus", "Yth. Bapak Agus,"),
        ("Bapak Hendra Gunawan", "Yth. Bapak Hendra Gunawan,"),
        ("Ibu Hj. Siti Aminah", "Yth. Ibu Hj. Siti Aminah,"),
        ("Pak Ahmad Fauzi", "Yth. Bapak Ahmad Fauzi,"),
        ("Bpk. Joko", "Yth. Bapak Joko,"),
        ("bu Rosmiati", "Yth. Ibu Rosmiati,"),
        ("Sari", "Yth. Bapak/Ibu Sari,"),
        ("dr. Rina Marpaung", "Yth. Bapak/Ibu dr. Rina Marpaung,"),
        ("Budi Santoso", "Yth. Bapak/Ibu Budi Santoso,"),
        ("Ibuk", "Yth. Bapak/Ibu Ibuk,"),
    ] {
        let mut ctx = MessageContext::sample();
        ctx.contact_name = Some(contact.into());
        for name in ["reminder_1", "payment_thanks", "amount_breakdown"] {
            let text = c.render_text(name, &ctx).unwrap();
            assert!(text.contains(greeted), "{contact}: {text}");
            let body = c.render_whatsapp_body(name, &ctx).unwrap();
            assert!(body.contains(greeted), "{contact}: {body}");
            for doubled in [
                "Bapak/Ibu Bapak ",
                "Bapak/Ibu Ibu ",
                "Bapak Bapak ",
                "Ibu Ibu ",
            ] {
                assert!(!text.contains(doubled) && !body.contains(doubled), "{text}");
            }
        }
    }
    assert_eq!(
        crate::messages::greeting(None, "PT Maju"),
        "Bapak/Ibu Pimpinan PT Maju"
    );
}
