-- Schema of the auth service. Applied by the mysql container on first start, by the Kubernetes
-- mysql init, and by scripts/run-local; safe to apply again. No users, no passwords here:
-- the first admin comes from ADMIN_EMAIL / ADMIN_PASSWORD when auth starts.

CREATE TABLE IF NOT EXISTS users (
    id            INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email         VARCHAR(255) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    is_admin      BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY users_email (email)
);

-- Failed logins per account, so that every auth replica throttles the same way.
CREATE TABLE IF NOT EXISTS login_failures (
    email        VARCHAR(255) NOT NULL PRIMARY KEY,
    failures     INT UNSIGNED NOT NULL DEFAULT 0,
    locked_until TIMESTAMP    NULL DEFAULT NULL
);
