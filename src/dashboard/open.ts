import { loadConfig } from '../config/load.js';
import { toLoadOptions, type ConfigFlags } from '../cli/options.js';
import { Dashboard } from './server.js';

export interface DashboardFlags extends ConfigFlags {
  port?: number;
  host?: string;
}

/** Starts the dashboard from the same configuration the stages load (metrics.*, dashboard.*); flags win. */
export async function openDashboard(flags: DashboardFlags): Promise<Dashboard> {
  const config = loadConfig(toLoadOptions(flags));
  const dashboard = new Dashboard({
    host: flags.host ?? config.dashboard.host,
    port: flags.port ?? config.dashboard.port,
    metricsHost: config.metrics.host === '0.0.0.0' ? '127.0.0.1' : config.metrics.host,
    metricsPort: config.metrics.port,
  });
  await dashboard.start();
  return dashboard;
}
