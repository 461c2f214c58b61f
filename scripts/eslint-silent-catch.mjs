// ESLint rule `lanekeeper/silent-catch`: a promise's rejection dropped on the floor
// (`.catch(() => undefined)`, `.catch(() => {})`) must say why that is safe. A comment inside
// the handler, on the line of `.catch` or the line above it, or right before the statement
// counts (the last only when the chain starts on the statement's first line); otherwise handle
// the error or log it. An empty `catch {}` block is `no-empty`'s job.

/** Whether a handler does nothing with the error: `() => undefined`, `() => {}`, `() => null`, `() => void 0`. */
function isSilent(handler, sourceCode) {
  if (handler.type !== "ArrowFunctionExpression" && handler.type !== "FunctionExpression") return false;
  const body = handler.body;
  if (body.type === "BlockStatement") return body.body.length === 0 && sourceCode.getCommentsInside(body).length === 0;
  if (body.type === "Identifier") return body.name === "undefined";
  if (body.type === "Literal") return body.value === null;
  return body.type === "UnaryExpression" && body.operator === "void" && body.argument.type === "Literal";
}

/** The statement (or class member) a node belongs to: where a comment about it would sit. */
function enclosingStatement(node) {
  let current = node;
  while (current.parent) {
    const parentType = current.parent.type;
    if (parentType === "Program" || parentType === "BlockStatement" || parentType === "ClassBody" || parentType === "SwitchCase" || parentType === "StaticBlock") return current;
    current = current.parent;
  }
  return current;
}

/** @type {import("eslint").Rule.RuleModule} */
export const silentCatch = {
  meta: {
    type: "problem",
    docs: { description: "A swallowed promise rejection needs a comment saying why ignoring it is safe" },
    schema: [],
    messages: {
      silent: "This .catch drops the error without a word: handle it, log it, or add a comment saying why ignoring it is safe.",
    },
  },
  create(context) {
    const sourceCode = context.sourceCode;
    /** Lines a comment starts on, and lines one ends on (built on the first .catch seen). */
    let commentLines;
    const linesWithComments = () => {
      commentLines ??= {
        starts: new Set(sourceCode.getAllComments().map((comment) => comment.loc.start.line)),
        ends: new Set(sourceCode.getAllComments().map((comment) => comment.loc.end.line)),
      };
      return commentLines;
    };
    return {
      CallExpression(node) {
        const callee = node.callee;
        if (callee.type !== "MemberExpression" || callee.computed || callee.property.type !== "Identifier" || callee.property.name !== "catch") return;
        const handler = node.arguments[0];
        if (node.arguments.length !== 1 || !handler || !isSilent(handler, sourceCode)) return;
        const catchLine = callee.property.loc.start.line;
        const { starts, ends } = linesWithComments();
        if (ends.has(catchLine - 1) || starts.has(catchLine)) return;
        // A comment right before the statement covers a chain that starts on its first line
        // (`await x\n  .then(…)\n  .catch(…)`), not a handler buried deeper inside it.
        const statement = enclosingStatement(node);
        const before = sourceCode.getCommentsBefore(statement).at(-1);
        if (before && before.loc.end.line >= statement.loc.start.line - 1 && node.loc.start.line === statement.loc.start.line) return;
        context.report({ node: callee.property, messageId: "silent" });
      },
    };
  },
};

export const lanekeeperPlugin = { meta: { name: "lanekeeper" }, rules: { "silent-catch": silentCatch } };
