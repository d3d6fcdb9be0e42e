// Feature modules register their routes, role hooks, commands and maintenance tasks on import.
// This file is the list; the CLI imports it once.
import './cli/dev.ts';
import './push/register.ts';
import './affinity/register.ts';
import './money/register.ts';
import './ops/register.ts';
import './webhooks/register.ts';
import './money-flow/register.ts';
import './http/integration.ts';
import './maintenance/register.ts';
