// The part of mongosh's API that health checks and /docker-entrypoint-initdb.d scripts use. Every call
// becomes one database command, run by the Python side (__command) over the wire like any client's.
// Inside a function: a script's own top-level names (`database`, `run` ...) never clash with these.
(() => {
class QuitSignal {}
function quit(code) { __exit(code === undefined ? 0 : code); throw new QuitSignal(); }
function print(...values) { __print(values.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(" ")); }
function printjson(value) { __print(JSON.stringify(value, null, 2)); }
function run(database, command) {
  const reply = JSON.parse(__command(database, JSON.stringify(command)));
  if (reply.ok !== 1) {
    const error = new Error(reply.errmsg || "command failed");
    error.code = reply.code;
    error.codeName = reply.codeName;
    throw error;
  }
  return reply;
}

class Cursor {
  constructor(collection, filter, projection) { Object.assign(this, { collection, filter, projection }); }
  toArray() {
    const command = { find: this.collection.name, filter: this.filter || {} };
    if (this.projection) command.projection = this.projection;
    let reply = run(this.collection.db.name, command);
    const documents = reply.cursor.firstBatch;
    while (reply.cursor.id !== 0 && reply.cursor.id !== "0") {
      reply = run(this.collection.db.name, { getMore: { $numberLong: String(reply.cursor.id) }, collection: this.collection.name });
      documents.push(...reply.cursor.nextBatch);
    }
    return documents;
  }
}

class Collection {
  constructor(db, name) { Object.assign(this, { db, name }); }
  insertOne(document) { return run(this.db.name, { insert: this.name, documents: [document] }); }
  insertMany(documents) { return run(this.db.name, { insert: this.name, documents }); }
  find(filter, projection) { return new Cursor(this, filter, projection); }
  findOne(filter, projection) { return this.find(filter, projection).toArray()[0] || null; }
  countDocuments(filter) { return run(this.db.name, { count: this.name, query: filter || {} }).n; }
  createIndex(key, options) {
    const name = Object.entries(key).map(([field, order]) => `${field}_${order}`).join("_");
    return run(this.db.name, { createIndexes: this.name, indexes: [{ key, name, ...(options || {}) }] });
  }
  updateOne(filter, update, options) {
    return run(this.db.name, { update: this.name, updates: [{ q: filter, u: update, ...(options || {}) }] });
  }
  deleteMany(filter) { return run(this.db.name, { delete: this.name, deletes: [{ q: filter, limit: 0 }] }); }
  drop() { return run(this.db.name, { drop: this.name }); }
}

class Database {
  constructor(name) { this.name = name; }
  getName() { return this.name; }
  getSiblingDB(name) { return database(name); }
  getCollection(name) { return new Collection(this, name); }
  runCommand(command) { return run(this.name, command); }
  adminCommand(command) { return run("admin", command); }
  createUser(user) {
    const { user: name, ...rest } = user;
    return run(this.name, { createUser: name, ...rest });
  }
  dropUser(name) { return run(this.name, { dropUser: name }); }
  getUser(name) { return run(this.name, { usersInfo: name }).users[0] || null; }
}

// db.jobs is db.getCollection("jobs"), as in mongosh.
function database(name) {
  return new Proxy(new Database(name), {
    get: (target, property) => (property in target || typeof property === "symbol" ? target[property] : target.getCollection(property)),
  });
}

Object.assign(globalThis, { quit, exit: quit, print, printjson, __database: database });
})();
