//! `user add|unlock` and `token create`.

use super::{Ctx, Failure, TokenCommand, UserCommand};

pub(super) async fn user(ctx: &Ctx, command: UserCommand) -> Result<(), Failure> {
    match command {
        UserCommand::Add {
            username,
            role,
            branch,
        } => user_add(ctx, &username, &role, branch.as_deref()).await,
        UserCommand::Unlock { username } => user_unlock(ctx, &username).await,
    }
}

pub(super) async fn token(ctx: &Ctx, command: TokenCommand) -> Result<(), Failure> {
    match command {
        TokenCommand::Create { name, role, branch } => {
            token_create(ctx, &name, &role, branch.as_deref()).await
        }
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
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| anyhow::anyhow!("cannot read the password from stdin: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']);
    let db = ctx.migrated().await?;
    crate::accounts::add_user(&db, username, password, role, branch)
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
