// Syntax-check Cypher statements with Neo4j's own parser (@neo4j-cypher/language-support).
//
// stdin:  JSON array of {"id": string, "query": string, "parameters"?: object}
// stdout: JSON array of {"id", "errors": [{message, line, column}], "warnings": [...]}
//
// With "parameters", the statement's $parameters are checked against them (an unknown
// parameter is an error); without, parameter diagnostics are ignored. Statements are
// checked as Cypher 5 (the Neo4j 5 dialect flowgraph targets). Exit 0 unless the input
// cannot be read; the caller decides what fails.
import { allCypherVersions, isNotParamError, lintCypherQuery } from '@neo4j-cypher/language-support';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const items = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const cypher5 = allCypherVersions.find((v) => /\b5\b/.test(v));
const out = items.map(({ id, query, parameters }) => {
  const schema = {};
  if (cypher5) schema.defaultLanguage = cypher5;
  if (parameters) schema.parameters = parameters;
  const { diagnostics } = lintCypherQuery(query, schema);
  const kept = parameters ? diagnostics : diagnostics.filter((d) => isNotParamError(d));
  const shape = (d) => ({
    message: d.message,
    line: d.range.start.line + 1,
    column: d.range.start.character + 1,
  });
  return {
    id,
    errors: kept.filter((d) => d.severity === 1).map(shape),
    warnings: kept.filter((d) => d.severity !== 1).map(shape),
  };
});
process.stdout.write(JSON.stringify({ cypherVersion: cypher5 ?? null, results: out }) + '\n');
