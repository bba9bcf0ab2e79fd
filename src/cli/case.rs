//! `case show NPP`.

use super::{CaseCommand, Ctx, Failure};

pub(super) async fn case(ctx: &Ctx, command: CaseCommand) -> Result<(), Failure> {
    let CaseCommand::Show { npp, json } = command;
    let npp = crate::domain::Npp::parse(&npp)
        .map_err(|e| Failure::invalid(vec![format!("error: {e}")]))?;
    let db = ctx.existing().await?;
    let Some(id) = crate::cases::case_id_for_npp(&db, npp.as_str()).await? else {
        return Err(Failure {
            code: 1,
            lines: vec![format!("error: employer {npp} has no case")],
        });
    };
    let view = crate::cases::load(&db, &ctx.config.policy(), id, crate::time::now())
        .await?
        .ok_or_else(|| anyhow::anyhow!("case {id} disappeared"))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&view).expect("serialisable")
        );
    } else {
        print_case(&view);
    }
    Ok(())
}

fn print_case(c: &crate::cases::CaseView) {
    println!(
        "case {} — {} {} ({}), branch {}",
        c.id, c.employer.npp, c.employer.name, c.status, c.employer.branch
    );
    println!(
        "stage {}, opened {}",
        c.stage,
        c.opened_at.format("%Y-%m-%d %H:%M UTC")
    );
    if let Some(q) = &c.quiet_reason {
        let next = c
            .next_action_at
            .map(|t| t.format(" until %Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        println!("bot is silent: {q}{next}");
    }
    println!("bills:");
    for b in &c.bills {
        println!(
            "  {}  {:>16}  due {}  paid {:>16}  late fee {:>12}{}{}",
            b.period,
            b.amount.to_rupiah_string(),
            b.due_date,
            b.paid.to_rupiah_string(),
            b.late_fee.to_rupiah_string(),
            if b.late_fee_estimated {
                " (perkiraan)"
            } else {
                ""
            },
            if b.overdue { "  OVERDUE" } else { "" }
        );
    }
    println!(
        "arrears {}, late fees {}, total due {}",
        c.totals.arrears.to_rupiah_string(),
        c.totals.late_fees.to_rupiah_string(),
        c.totals.total_due.to_rupiah_string()
    );
    println!("case log:");
    for e in &c.events {
        println!(
            "  {}  {:<18} {:<16} {}",
            e.at.format("%Y-%m-%d %H:%M"),
            e.kind,
            e.actor,
            e.data
        );
    }
}
