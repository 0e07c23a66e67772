// The window's main-process side for tests: an AppController per device home (the real services, a real
// relay from the Lab), reached through the same dispatcher the IPC uses. Registers beforeEach/afterEach:
// every controller is closed and the Lab removed after each test.
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { AppController } from '../../main/app/app-controller.ts';
import { createDispatcher, type Dispatch } from '../../main/app/ipc-dispatch.ts';
import type { IpcResult } from '../../shared/portable/ipc-contract.ts';
import { Lab } from './devices.ts';

const platform = () => ({ notify: () => {}, getStartAtLogin: () => false, setStartAtLogin: () => {} });

export interface ControllerLab {
  /** This test's Lab (a new one for each test). */
  readonly lab: Lab;
  /** A started controller for the home `name`, its dispatcher, and the home's folder. */
  app(name: string): Promise<{ controller: AppController; call: Dispatch; home: string }>;
}

export function controllerLab(): ControllerLab {
  let lab: Lab;
  const controllers: AppController[] = [];
  beforeEach(() => {
    lab = new Lab();
  });
  afterEach(async () => {
    for (const controller of controllers.splice(0)) await controller.close();
    await lab.close();
  });
  return {
    get lab() {
      return lab;
    },
    async app(name) {
      const controller = new AppController({ ...lab.home(name), platform: platform() });
      controllers.push(controller);
      await controller.start();
      return { controller, call: createDispatcher(controller.handlers()), home: join(lab.dir, name) };
    },
  };
}

/** The value of a successful answer; a failed one fails the test with its code and words. */
export function value<T>(result: IpcResult<unknown>): T {
  if (!result.ok) throw new Error(`failed: ${result.error.code} ${result.error.message}`);
  return result.value as T;
}
