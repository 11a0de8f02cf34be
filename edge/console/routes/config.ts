// Configuration page: view (YAML with masked secrets + the schema the form is drawn
// from), validate with field-level problems and a diff against the running config,
// apply with a revision check and automatic rollback (apply.ts), download/upload.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { stringify } from 'yaml';
import { GatewayConfigSchema } from '../../config/schema.js';
import { parseConfig, ConfigError, redactedConfig } from '../../config/load.js';
import { diffConfigs, type EditResult } from '../../config/apply.js';
import { applyChange } from '../../config/change.js';
import { sendError, later, type ConsoleDeps } from '../server.js';
import type { ConfigApplied, ConfigCheck, ConfigView } from '../api-types.js';

const Change = Type.Object({ path: Type.Array(Type.Union([Type.String({ maxLength: 100 }), Type.Integer({ minimum: 0 })]), { minItems: 1, maxItems: 20 }), value: Type.Unknown() }, { additionalProperties: false });
const Edit = Type.Object(
  {
    yaml: Type.Optional(Type.String()),
    changes: Type.Optional(Type.Array(Change, { maxItems: 500 })),
    baseRevision: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
type EditBody = Static<typeof Edit>;

export function configRoutes(app: FastifyInstance, d: ConsoleDeps): void {
  const file = d.configFile;
  const notEditable = `the gateway runs ${d.ctx.configSource === 'embedded' ? 'the built-in simulated estate' : `a config from "${d.ctx.configSource}"`}, not a config file: nothing to edit (start it with --config FILE)`;

  const evaluate = (body: EditBody): EditResult => {
    if (file) return file.candidate(body, d.ctx.config);
    if (typeof body.yaml !== 'string') return { ok: false, problems: ['(request): without a config file only whole YAML can be validated'] };
    try {
      const loaded = parseConfig(body.yaml, 'upload');
      return { ok: true, problems: [], yaml: body.yaml, config: loaded.config, diff: diffConfigs(d.ctx.config, loaded.config) };
    } catch (err) {
      if (err instanceof ConfigError) return { ok: false, problems: err.problems };
      throw err;
    }
  };

  const publicResult = (r: EditResult): ConfigCheck => ({ ok: r.ok, problems: r.problems, ...(r.diff ? { diff: r.diff } : {}), ...(r.config ? { effective: redactedConfig(r.config) } : {}) });

  app.get('/api/config', { config: { role: 'technician' } }, async (): Promise<ConfigView> => {
    const shown = file ? file.masked() : { yaml: stringify(redactedConfig(d.ctx.config)), revision: d.ctx.configRevision };
    return {
      editable: file !== undefined,
      ...(file ? { path: file.path } : { reason: notEditable }),
      source: d.ctx.configSource,
      yaml: shown.yaml,
      revision: shown.revision,
      runningRevision: d.ctx.configRevision,
      // A masked copy of the typed config: an object, section by section.
      running: redactedConfig(d.ctx.config) as Record<string, unknown>,
      lastApply: file?.marker() ?? null,
    };
  });

  app.get('/api/config/schema', { config: { role: 'technician' } }, async (_req, reply) => {
    reply.header('cache-control', 'private, max-age=300');
    return GatewayConfigSchema;
  });

  app.post<{ Body: EditBody }>('/api/config/validate', { config: { role: 'technician' }, schema: { body: Edit } }, async (req) => publicResult(evaluate(req.body)));

  // Upload of a whole file (raw YAML body): validated and returned for review; applying
  // it is a separate, explicit step.
  app.post('/api/config/upload', { config: { role: 'technician' } }, async (req: FastifyRequest, reply) => {
    const body = req.body;
    if (!Buffer.isBuffer(body)) return sendError(reply, 415, 'unsupported_media_type', 'send the file as text/yaml');
    const text = body.toString('utf8');
    if (text.includes('\u0000') || Buffer.from(text, 'utf8').compare(body) !== 0) return sendError(reply, 400, 'not_text', 'the file is not UTF-8 text');
    const r = evaluate({ yaml: text });
    return { ...publicResult(r), yaml: text } satisfies ConfigCheck;
  });

  app.get('/api/config/download', { config: { role: 'technician' } }, async (_req, reply) => {
    const yaml = file ? file.masked().yaml : stringify(redactedConfig(d.ctx.config));
    const name = `estate-edge-${d.ctx.config.site.id}-${d.ctx.config.gateway.id}-${new Date(d.ctx.clock.now()).toISOString().slice(0, 10)}.yaml`;
    return reply.type('application/yaml; charset=utf-8').header('content-disposition', `attachment; filename="${name}"`).send(yaml);
  });

  app.post<{ Body: EditBody }>('/api/config/apply', { config: { role: 'technician' }, schema: { body: Edit } }, async (req, reply) => {
    if (!file) return sendError(reply, 409, 'not_editable', notEditable);
    const pending = file.marker();
    if (pending?.status === 'pending') return sendError(reply, 409, 'restart_pending', `a change by ${pending.user} is being applied (service restarting): wait and reload`);
    const current = file.revision();
    if (req.body.baseRevision !== current) return sendError(reply, 409, 'conflict', 'the configuration was changed by someone else since you opened it: reload, then redo your change', { currentRevision: current });
    const r = evaluate(req.body);
    if (!r.ok || !r.yaml || !r.config) return reply.code(422).send({ error: { code: 'invalid_config', message: 'the configuration is not valid; nothing was changed', details: { problems: r.problems } }, ...publicResult(r) });
    if (!r.diff?.length) return sendError(reply, 409, 'no_change', 'the new configuration is the same as the running one');
    const applied = applyChange({ file, history: d.history, candidate: r as Parameters<typeof applyChange>[0]['candidate'], runningRevision: d.ctx.configRevision, health: d.ctx.healthReport(), user: req.session!.user, source: 'console', now: d.ctx.clock.now() });
    await d.audit(req, 'console.config.applied', { diff: r.diff.slice(0, 50), previousRevision: applied.previousRevision, newRevision: applied.revision });
    d.live.publish('console.config', { status: 'applying', user: req.session!.user });
    reply.send({ ok: true, message: 'configuration written; the service restarts to apply it', diff: r.diff, revision: file.revision() } satisfies ConfigApplied);
    const user = req.session!.user;
    later(d, 200, 'restart after config apply', () => d.ctx.requestRestart(`config applied from the console by ${user}`));
    return reply;
  });
}
