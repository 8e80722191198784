// The services' MongoDB users, from .env: the mongo image runs this file with mongosh on its first
// start only (while its data directory is empty), as MONGO_ROOT_USER. Each service may read and write
// the project's database, MONGODB_DB, and nothing else; the root user stays for administration.
// In a block: the shell's own globals (db, print, ...) share the script's top-level scope.
{
  const projectDb = process.env.MONGODB_DB;
  if (!projectDb) {
    throw new Error("MONGODB_DB is empty: run scripts/init-env to update .env");
  }
  for (const service of ["GATEWAY", "CONVERTER", "NOTIFICATION"]) {
    const user = process.env[`MONGO_${service}_USER`];
    const password = process.env[`MONGO_${service}_PASSWORD`];
    if (!user || !password) {
      throw new Error(`MONGO_${service}_USER or MONGO_${service}_PASSWORD is empty: run scripts/init-env to update .env`);
    }
    db.getSiblingDB(projectDb).createUser({ user: user, pwd: password, roles: [{ role: "readWrite", db: projectDb }] });
  }
}
