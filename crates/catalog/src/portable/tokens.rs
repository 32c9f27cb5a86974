//! [`TokenCatalog`] on either engine (migration `0008_api_tokens.sql`).
//!
//! Written once for both engines and compiled for each (see `README.md` here).

use async_trait::async_trait;

use super::Engine;
use crate::error::CatalogError;
use crate::tokens::{
    id_taken, revoked_of, token_of, ApiToken, Revoked, TokenCatalog, TokenRow, TOKEN_COLUMNS,
};

#[async_trait]
impl TokenCatalog for Engine {
    async fn create_token(&self, token: &ApiToken) -> Result<(), CatalogError> {
        let done = sqlx::query(
            "INSERT INTO api_tokens (id, hash, scope, prefix, created_ms, expires_ms, revoked_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&token.id)
        .bind(&token.hash[..])
        .bind(token.scope.as_str())
        .bind(&token.prefix)
        .bind(token.created_ms)
        .bind(token.expires_ms)
        .bind(token.revoked_ms)
        .execute(&self.pool)
        .await
        .map_err(self.error("create token"))?;
        if done.rows_affected() == 0 {
            return Err(id_taken(&token.id));
        }
        Ok(())
    }

    async fn token(&self, id: &str) -> Result<Option<ApiToken>, CatalogError> {
        let row: Option<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.error("read token"))?;
        row.map(token_of).transpose()
    }

    async fn tokens(&self) -> Result<Vec<ApiToken>, CatalogError> {
        let rows: Vec<TokenRow> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_ms, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(self.error("list tokens"))?;
        rows.into_iter().map(token_of).collect()
    }

    async fn has_tokens(&self) -> Result<bool, CatalogError> {
        let (any,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM api_tokens)")
            .fetch_one(&self.pool)
            .await
            .map_err(self.error("check for tokens"))?;
        Ok(any)
    }

    async fn revoke_token(&self, id: &str, now_ms: i64) -> Result<Revoked, CatalogError> {
        let op = "revoke token";
        let mut tx = self.begin_write(op).await?;
        let before: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT revoked_ms FROM api_tokens WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(self.error(op))?;
        sqlx::query("UPDATE api_tokens SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(self.error(op))?;
        tx.commit().await.map_err(self.error(op))?;
        Ok(revoked_of(before.map(|(at,)| at)))
    }
}
