#!/usr/bin/env node
// vsrs: the tsvs tunnel real-server agent (compiled from src/cli/vsrs.ts into dist/).
import { main } from '../dist/cli/vsrs.js';

process.exitCode = await main(process.argv.slice(2));
