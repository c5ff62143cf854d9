import { capacityReviewPrompt } from './capacity-review.js';
import { changeReviewPrompt } from './change-review.js';
import { dailyReportPrompt } from './daily-report.js';
import { maintenancePlanPrompt } from './maintenance-plan.js';

/** Every prompt the server can offer, in the order clients list them. */
export const allPrompts = [dailyReportPrompt, capacityReviewPrompt, changeReviewPrompt, maintenancePlanPrompt];
