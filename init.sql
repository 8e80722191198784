-- Schema of the auth service. Applied by the mysql container on first start, by the Kubernetes
-- mysql init, and by scripts/run-local; safe to apply again. No users, no passwords here:
-- the first admin comes from ADMIN_EMAIL / ADMIN_PASSWORD when auth starts.
-- A database made by an older version of this file is brought up to date by auth at start
-- (services/auth/auth/schema.py), since this file runs only on a server's first start.

-- E-mail columns compare byte for byte (utf8mb4_bin, the same on MySQL 8.4 and MariaDB): an
-- accent- and case-insensitive collation ignores characters such as U+200B, so that a different
-- text would find, and be counted against, another account. Auth stores addresses normalised.
-- token_version grows when the password changes: tokens issued before no longer validate.
CREATE TABLE IF NOT EXISTS users (
    id            INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email         VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    is_admin      BOOLEAN      NOT NULL DEFAULT FALSE,
    token_version INT UNSIGNED NOT NULL DEFAULT 0,
    created_at    TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY users_email (email)
) DEFAULT CHARACTER SET utf8mb4;

-- Login attempts per account, so that every auth replica throttles the same way. An attempt is
-- counted before its password is checked (services/auth/auth/users.py).
CREATE TABLE IF NOT EXISTS login_failures (
    email        VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    failures     INT UNSIGNED NOT NULL DEFAULT 0,
    locked_until TIMESTAMP    NULL DEFAULT NULL
) DEFAULT CHARACTER SET utf8mb4;
