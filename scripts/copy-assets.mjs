// Copies the files tsc does not emit (the dashboard's static assets) into dist/.
import { cpSync, existsSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
if (existsSync(`${root}src/web/assets`)) cpSync(`${root}src/web/assets`, `${root}dist/web/assets`, { recursive: true });
