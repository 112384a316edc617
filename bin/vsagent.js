#!/usr/bin/env node
// vsagent: the tsvs load agent for dynamic feedback (compiled from src/cli/vsagent.ts into dist/).
import { main } from '../dist/cli/vsagent.js';

process.exitCode = await main(process.argv.slice(2));
