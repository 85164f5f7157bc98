import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/index.ts';

describe('createLogger', () => {
  it('writes [name] lines at and above its level', () => {
    let written = '';
    const stream = { write: (text: string) => (written += text) };
    const logger = createLogger({ name: 'percy', level: 'info', stream });
    logger.debug('hidden');
    logger.info('listening');
    logger.warn('slow');
    logger.error('broken');
    assert.equal(written, '[percy] listening\n[percy] warn: slow\n[percy] error: broken\n');
  });

  it('shows debug lines at level debug', () => {
    let written = '';
    createLogger({ level: 'debug', stream: { write: (text: string) => (written += text) } }).debug('detail');
    assert.equal(written, '[portlock] debug: detail\n');
  });
});
