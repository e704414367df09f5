// A CouchDB-protocol server on 127.0.0.1 for the tests: express-pouchdb over in-memory PouchDB.
// Usage: COUCH_USER=... COUCH_PASSWORD=... node server.js PORT
// Like a CHT CouchDB (cht-core couchdb/10-docker-default.ini: require_valid_user = true) every request needs
// the admin's basic auth; CouchDB's /_up (express-pouchdb has none) answers {"status":"ok"}. Prints
// "listening <port>" once it accepts connections. Loopback only; it stops when its parent closes stdin.
'use strict';
const express = require('express');
const PouchDB = require('pouchdb-core')
  .plugin(require('pouchdb-adapter-memory'))
  .plugin(require('pouchdb-mapreduce'))
  .plugin(require('pouchdb-replication'));

const port = Number(process.argv[2] || 0);
const user = process.env.COUCH_USER || '';
const password = process.env.COUCH_PASSWORD || '';
const MemPouch = PouchDB.defaults({ adapter: 'memory' });
const app = express();

app.use((req, res, next) => {
  const header = req.headers.authorization || '';
  const given = header.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64').toString('utf8') : null;
  if (given !== `${user}:${password}`) {
    res.status(401).json({ error: 'unauthorized', reason: 'Authentication required.' });
    return;
  }
  next();
});
app.get('/_up', (req, res) => res.json({ status: 'ok' }));
// Test-only: a copy whose attachment bytes were damaged on disk while the documents (and so the stubs with
// their digests) survived. PUT /_standin/damaged-attachments {"on": true} serves every attachment with its
// first byte changed.
let damaged = false;
app.put('/_standin/damaged-attachments', express.json(), (req, res) => {
  damaged = Boolean(req.body && req.body.on);
  res.json({ ok: true, damaged });
});
app.get('/:db/:doc/:attachment', (req, res, next) => {
  if (!damaged || req.params.db.startsWith('_') || req.params.doc.startsWith('_')) return next();
  new MemPouch(req.params.db)
    .getAttachment(req.params.doc, req.params.attachment, req.query.rev ? { rev: req.query.rev } : {})
    .then((data) => {
      const bytes = Buffer.from(data);
      if (bytes.length > 0) bytes[0] ^= 0xff;
      res.type('application/octet-stream').send(bytes);
    })
    .catch(() => next());
});
app.use('/', require('express-pouchdb')(MemPouch, { mode: 'minimumForPouchDB', inMemoryConfig: true }));

const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.resume();
