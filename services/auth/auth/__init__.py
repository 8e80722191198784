"""auth: checks users' passwords against MySQL and issues and validates JWTs."""
