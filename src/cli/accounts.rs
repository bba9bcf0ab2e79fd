//! `user add|unlock|list|disable|enable|reset-password` and
//! `token create|list|revoke`. Changes are audited as done by `cli`.

use super::{Ctx, Failure, TokenCommand, UserCommand};

pub(super) async fn user(ctx: &Ctx, command: UserCommand) -> Result<(), Failure> {
    match command {
        UserCommand::Add {
            username,
            role,
            branch,
        } => user_add(ctx, &username, &role, branch.as_deref()).await,
        UserCommand::Unlock { username } => user_unlock(ctx, &username).await,
        UserCommand::List { json } => user_list(ctx, json).await,
        UserCommand::Disable { username } => user_disable(ctx, &username).await,
        UserCommand::Enable { username } => user_enable(ctx, &username).await,
        UserCommand::ResetPassword { username } => user_reset_password(ctx, &username).await,
    }
}

pub(super) async fn token(ctx: &Ctx, command: TokenCommand) -> Result<(), Failure> {
    match command {
        TokenCommand::Create { name, role, branch } => {
            token_create(ctx, &name, &role, branch.as_deref()).await
        }
        TokenCommand::List { json } => token_list(ctx, json).await,
        TokenCommand::Revoke { name } => token_revoke(ctx, &name).await,
    }
}

fn parse_role(role: &str) -> Result<crate::accounts::Role, Failure> {
    role.parse()
        .map_err(|e| Failure::invalid(vec![format!("error: {e}")]))
}

async fn user_add(
    ctx: &Ctx,
    username: &str,
    role: &str,
    branch: Option<&str>,
) -> Result<(), Failure> {
    let role = parse_role(role)?;
    let password = read_password()?;
    let db = ctx.migrated().await?;
    crate::accounts::add_user(&db, username, &password, role, branch)
        .await
        .map_err(|e| Failure::invalid(vec![format!("error: {e:#}")]))?;
    println!("user {username} created ({role})");
    Ok(())
}

async fn user_unlock(ctx: &Ctx, username: &str) -> Result<(), Failure> {
    let db = ctx.migrated().await?;
    let cleared = crate::accounts::unlock_user(&db, username, "cli")
        .await
        .map_err(|e| Failure::invalid(vec![format!("error: {e:#}")]))?;
    println!("user {username} unlocked ({cleared} failed login(s) cleared)");
    Ok(())
}

async fn token_create(
    ctx: &Ctx,
    name: &str,
    role: &str,
    branch: Option<&str>,
) -> Result<(), Failure> {
    let role = parse_role(role)?;
    let db = ctx.migrated().await?;
    let token = crate::accounts::create_token(&db, name, role, branch)
        .await
        .map_err(|e| Failure::invalid(vec![format!("error: {e:#}")]))?;
    println!("{token}");
    Ok(())
}

/// One line from stdin, without its line ending.
fn read_password() -> Result<String, Failure> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| anyhow::anyhow!("cannot read the password from stdin: {e}"))?;
    Ok(password.trim_end_matches(['\r', '\n']).to_owned())
}

fn invalid(e: anyhow::Error) -> Failure {
    Failure::invalid(vec![format!("error: {e:#}")])
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}

async fn user_list(ctx: &Ctx, json: bool) -> Result<(), Failure> {
    let db = ctx.migrated().await?;
    let users = crate::accounts::list_users(&db).await?;
    if json {
        println!("{}", serde_json::to_string(&users).expect("serialisable"));
        return Ok(());
    }
    println!(
        "{:<20} {:<10} {:<14} {:<22} state",
        "username", "role", "branch", "last login"
    );
    for u in users {
        let state = if u.disabled_at.is_some() {
            "disabled"
        } else if u.locked {
            "locked"
        } else {
            "active"
        };
        println!(
            "{:<20} {:<10} {:<14} {:<22} {state}",
            u.username,
            u.role,
            u.branch.as_deref().unwrap_or("-"),
            when(u.last_login_at)
        );
    }
    Ok(())
}

async fn user_disable(ctx: &Ctx, username: &str) -> Result<(), Failure> {
    let db = ctx.migrated().await?;
    let changed = crate::accounts::disable_user(&db, username, "cli")
        .await
        .map_err(invalid)?;
    if changed {
        println!("user {username} disabled; its sessions ended");
    } else {
        println!("user {username} was already disabled");
    }
    Ok(())
}

async fn user_enable(ctx: &Ctx, username: &str) -> Result<(), Failure> {
    let db = ctx.migrated().await?;
    let changed = crate::accounts::enable_user(&db, username, "cli")
        .await
        .map_err(invalid)?;
    if changed {
        println!("user {username} enabled");
    } else {
        println!("user {username} was not disabled");
    }
    Ok(())
}

async fn user_reset_password(ctx: &Ctx, username: &str) -> Result<(), Failure> {
    let password = read_password()?;
    let db = ctx.migrated().await?;
    crate::accounts::reset_password(&db, username, &password, "cli")
        .await
        .map_err(invalid)?;
    println!("password of {username} reset; its sessions ended");
    Ok(())
}

async fn token_list(ctx: &Ctx, json: bool) -> Result<(), Failure> {
    let db = ctx.migrated().await?;
    let tokens = crate::accounts::list_tokens(&db).await?;
    if json {
        println!("{}", serde_json::to_string(&tokens).expect("serialisable"));
        return Ok(());
    }
    println!(
        "{:<24} {:<10} {:<14} {:<22} revoked",
        "name", "role", "branch", "created"
    );
    for t in tokens {
        println!(
            "{:<24} {:<10} {:<14} {:<22} {}",
            t.name,
            t.role,
            t.branch.as_deref().unwrap_or("-"),
            when(Some(t.created_at)),
            when(t.revoked_at)
        );
    }
    Ok(())
}

async fn token_revoke(ctx: &Ctx, name: &str) -> Result<(), Failure> {
    let db = ctx.migrated().await?;
    crate::accounts::revoke_token(&db, name, "cli")
        .await
        .map_err(invalid)?;
    println!("token {name} revoked");
    Ok(())
}
