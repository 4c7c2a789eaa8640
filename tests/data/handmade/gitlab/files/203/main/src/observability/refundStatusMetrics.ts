import { counter, histogram } from './metrics';

export const refundStatusPolls = counter('storefront_refund_status_polls_total');
export const refundStatusLatency = histogram('storefront_refund_status_seconds');
