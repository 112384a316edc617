#!/usr/bin/env node
// vsadm: the ipvsadm drop-in (compiled from src/cli/vsadm.ts into dist/). Installed or linked
// under the name `ipvsadm`, it behaves exactly as ipvsadm 1.31.
import { main } from '../dist/cli/vsadm.js';

process.exitCode = await main(process.argv.slice(2));
