#!/usr/bin/env node
// vsd: the tsvs daemon (compiled from src/cli/vsd.ts into dist/).
import { main } from '../dist/cli/vsd.js';

process.exitCode = await main(process.argv.slice(2));
