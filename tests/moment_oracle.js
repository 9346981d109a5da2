// The reference for SPEC §1's date rules: moment.js itself, answering over stdin/stdout.
//
// Usage: TZ=<zone> CONVSTATS_MOMENT_DIR=<folder holding node_modules/moment> node moment_oracle.js
//
// The server time zone is the process's own (the TZ variable), as upstream's server calls
// plain moment(value) in a process running in its own zone; one process serves one zone.
//
// Each input line is a JSON request, each answer one JSON line:
//   {"op": "hello", "probes": [<epoch ms>, ...]}
//     -> {"moment": "<version>", "node": "<version>", "zone": "<zone the process runs in>",
//         "offsets": [<minutes east of UTC at each probe>, ...]}
//   {"op": "parse", "strings": [s, ...]}
//     -> {"results": [{"valid": bool, "path": "iso" | "rfc2822" | "aspnet" | "fallback",
//                      "format": "<m._f>" | null, "ms": <epoch ms> | null}, ...]}
//   {"op": "diff", "pairs": [[start, end], ...]}
//     -> {"results": [{"start_ms", "end_ms", "years"}, ...]}  (null fields where invalid)
// "years" is upstream's one-year measure:
//   end.clone().startOf('day').diff(start.clone().startOf('day'), 'year', true)
'use strict';

const path = require('path');
const readline = require('readline');

const folder = process.env.CONVSTATS_MOMENT_DIR || path.join(__dirname, '..');
const moment = require(path.join(folder, 'node_modules', 'moment'));

// The Date fallback warns on stderr for every string it sees; the path is reported instead.
moment.suppressDeprecationWarnings = true;

// moment's own test for the ASP.NET JSON form, which it tries before ISO 8601.
const aspNet = /^\/?Date\((-?\d+)/i;

function pathOf(m, raw) {
    if (typeof m._f === 'string') {
        return 'iso';
    }
    if (m._pf && m._pf.rfc2822) {
        return 'rfc2822';
    }
    return aspNet.test(raw) ? 'aspnet' : 'fallback';
}

function parse(raw) {
    const m = moment(raw);
    const valid = m.isValid();
    return {
        valid: valid,
        path: pathOf(m, raw),
        format: typeof m._f === 'string' ? m._f : null,
        ms: valid ? m.valueOf() : null,
    };
}

function years(start, end) {
    const a = moment(start);
    const b = moment(end);
    if (!a.isValid() || !b.isValid()) {
        return { start_ms: null, end_ms: null, years: null };
    }
    return {
        start_ms: a.valueOf(),
        end_ms: b.valueOf(),
        years: b.clone().startOf('day').diff(a.clone().startOf('day'), 'year', true),
    };
}

function answer(request) {
    switch (request.op) {
        case 'hello':
            return {
                moment: moment.version,
                node: process.version,
                zone: Intl.DateTimeFormat().resolvedOptions().timeZone,
                offsets: (request.probes || []).map((ms) => -new Date(ms).getTimezoneOffset()),
            };
        case 'parse':
            return { results: request.strings.map(parse) };
        case 'diff':
            return { results: request.pairs.map((pair) => years(pair[0], pair[1])) };
        default:
            return { error: 'unknown op ' + JSON.stringify(request.op) };
    }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
    if (line.trim() !== '') {
        process.stdout.write(JSON.stringify(answer(JSON.parse(line))) + '\n');
    }
});
